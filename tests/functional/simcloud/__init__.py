"""The simulated cloud: every instance the cloud API (moto, the GCE emulator) runs gets a real body.

A body is a systemd container on the rig's network, booted from the instance's image with the
instance's own user data as a cloud-init NoCloud seed. Inside it, 169.254.169.254:80 is DNATed to
the cloud's metadata server (moto's IMDS, the emulator's metadata server), so node code reads its
identity at the real address. The controller joins the rig's Headscale with a userspace
tailscaled and reaches nodes over the tailnet, as it would in the cloud.

- rig.py: the rig's addresses, images and mirror URLs; why a test must skip.
- seed.py, netns.py: a body's NoCloud seed and its metadata DNAT.
- bodies.py: the reconciler (cloud API state -> podman containers) and its AWS and GCP adapters.
- golden.py: the golden image, built locally from packer/image.yml.
- tailnet.py: Headscale's keys and nodes, and the controller's own tailscaled.
"""
