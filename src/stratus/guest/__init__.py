"""The Stratus test guest: a CirrOS-like image built offline from Debian packages.

`builder` makes the artifacts (bootable qcow2, kernel + initramfs, vmlinux),
`scripts` is what runs inside the guest and what it prints, `qemu` starts a
guest and watches its serial console (used by the QEMU driver and tests).
"""
