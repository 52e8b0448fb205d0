# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Compute Engine v1 emulator whose every request and response is checked against the
official compute.v1 discovery document (see schema.py)."""
