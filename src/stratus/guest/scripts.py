"""What runs inside the guest: busybox ash scripts and config files of the initramfs.

The guest is a CirrOS-like test machine. Its serial console says, one line each:

    stratus-guest boot=<n> disk=<dev|none> disks=<vda,vdb,...> uptime=<s>
    stratus-guest up ip=<addr or none> hostname=<name>
    stratus-guest tick=<n>                      (every second)
    stratus-guest user-data rc=<rc>             (when user data was a #! script)
    stratus-guest powering off

`boot` and `tick` are kept on the persistent disk (the FAT partition labelled
STRATUS), so a reboot, a snapshot or a migration can be checked from outside:
a reboot bumps `boot`, a pause stops the ticks, a migration keeps both going.
Port 80 answers any TCP connection (raw or HTTP) with one line:
`hostname=<name> uuid=<id> boot=<n> tick=<n> ip=<addr>`.

Kernel command line knobs: `stratus.metadata_url=URL` (default the OpenStack
metadata service), `stratus.nonet` (skip DHCP and metadata).
"""

from __future__ import annotations

MARKER_PREFIX = "stratus-guest"
DATA_LABEL = "STRATUS"
DEFAULT_HOSTNAME = "stratus-guest"
METADATA_URL = "http://169.254.169.254/openstack/latest"
SERVICE_PORT = 80

# PID 1: mount the pseudo filesystems, then hand over to busybox init.
INIT = """#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp /var/run /var/log /mnt/disk /mnt/config
mount -t devpts devpts /dev/pts
exec /sbin/init
"""

INITTAB = """::sysinit:/etc/stratus/boot
::respawn:/etc/stratus/ticker
tty1::askfirst:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/stratus/shutdown
"""

BOOT = f"""#!/bin/sh
# sysinit: modules, data disk, config drive, DHCP, metadata, services, marker.
say() {{ echo "{MARKER_PREFIX} $*" > /dev/console; }}
arg() {{ for w in $(cat /proc/cmdline); do case "$w" in "$1"=*) echo "${{w#*=}}";; "$1") echo 1;; esac; done; }}
hostname {DEFAULT_HOSTNAME}
echo 1 > /proc/sys/kernel/printk 2>/dev/null
while read -r mod; do insmod "/lib/modules/$mod" 2>/dev/null; done < /etc/stratus/modules
ip link set lo up

disks=""
for d in /sys/block/vd*; do [ -e "$d" ] && disks="$disks${{disks:+,}}${{d##*/}}"; done
# The first disk whose FAT label (boot sector offset 71) is ours: a rescued guest keeps
# its state on the rescue disk (vda) and finds its own disk second (vdb).
disk=""
for p in /dev/vd[a-z]1; do
    [ -b "$p" ] && [ "$(dd if="$p" bs=1 skip=71 count={len(DATA_LABEL)} 2>/dev/null)" = {DATA_LABEL} ] &&
        {{ disk=$p; break; }}
done
[ -n "$disk" ] || disk=$(findfs LABEL={DATA_LABEL} 2>/dev/null)
if [ -n "$disk" ] && mount -t vfat -o rw,noatime "$disk" /mnt/disk; then
    mkdir -p /mnt/disk/stratus
    state=/mnt/disk/stratus
else
    disk=none
    mkdir -p /run/state
    state=/run/state
fi
ln -sfn "$state" /run/stratus
boot=$(cat "$state/boot" 2>/dev/null); boot=$((${{boot:-0}} + 1))
echo "$boot" > "$state/boot"; sync
say "boot=$boot disk=${{disk#/dev/}} disks=${{disks:-none}} uptime=$(cut -d' ' -f1 /proc/uptime)"

mkdir -p /run/meta
cfg=$(findfs LABEL=config-2 2>/dev/null || findfs LABEL=CONFIG-2 2>/dev/null)
if [ -n "$cfg" ] && {{ mount -t iso9660 -o ro "$cfg" /mnt/config 2>/dev/null ||
                      mount -t vfat -o ro "$cfg" /mnt/config 2>/dev/null; }}; then
    cp /mnt/config/openstack/latest/meta_data.json /run/meta/meta_data.json 2>/dev/null
    cp /mnt/config/openstack/latest/user_data /run/meta/user_data 2>/dev/null
    umount /mnt/config
    echo "config-drive $cfg" > /run/meta/source
fi

ip=none
if [ -z "$(arg stratus.nonet)" ] && [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    udhcpc -i eth0 -s /etc/stratus/udhcpc -t 5 -T 1 -A 1 -n -p /run/udhcpc.pid >/dev/null 2>&1
    [ -s /run/ip ] && ip=$(cat /run/ip)
    if [ "$ip" != none ] && [ ! -s /run/meta/meta_data.json ]; then
        url=$(arg stratus.metadata_url); url=${{url:-{METADATA_URL}}}
        # (this busybox's wget has no -T: bound it with timeout)
        if timeout 4 wget -q -O /run/meta/meta_data.json "$url/meta_data.json" 2>/dev/null; then
            timeout 4 wget -q -O /run/meta/user_data "$url/user_data" 2>/dev/null ||
                rm -f /run/meta/user_data
            echo "metadata $url" > /run/meta/source
        else
            rm -f /run/meta/meta_data.json
        fi
    fi
fi

field() {{ sed -n "s/.*\\"$1\\": *\\"\\([^\\"]*\\)\\".*/\\1/p" /run/meta/meta_data.json 2>/dev/null | head -n1; }}
uuid=$(field uuid)
name=$(field hostname | tr -cd 'A-Za-z0-9.-')
[ -z "$name" ] && [ -s /run/dhcp_hostname ] && name=$(tr -cd 'A-Za-z0-9.-' < /run/dhcp_hostname)
name=${{name:-{DEFAULT_HOSTNAME}}}
hostname "$name"
echo "$name" > /run/hostname; echo "${{uuid:-none}}" > /run/uuid; echo "$ip" > /run/ip
mkdir -p /root/.ssh
grep -o '"\\(ssh\\|ecdsa\\)-[^"]*"' /run/meta/meta_data.json 2>/dev/null | tr -d '"' |
    sed 's/\\\\n$//' > /root/.ssh/authorized_keys

acpid -c /etc/acpi -a /etc/acpid.conf -l /var/log/acpid.log
nc -ll -p {SERVICE_PORT} -e /etc/stratus/service >/dev/null 2>&1 &
say "up ip=$ip hostname=$name"
echo "uptime at the up marker: $(cut -d' ' -f1 /proc/uptime)s" > /run/boot-time

if [ -s /run/meta/user_data ] && [ "$(head -c 2 /run/meta/user_data)" = "#!" ]; then
    chmod +x /run/meta/user_data
    /run/meta/user_data > /dev/console 2>&1
    say "user-data rc=$?"
fi
"""

TICKER = f"""#!/bin/sh
# One tick a second, kept on the data disk so it survives reboots and moves.
echo $$ > /run/ticker.pid
tick=$(cat /run/stratus/tick 2>/dev/null); tick=${{tick:-0}}
while :; do
    sleep 1
    tick=$((tick + 1))
    echo "$tick" > /run/stratus/tick
    sync
    echo "{MARKER_PREFIX} tick=$tick" > /dev/console
done
"""

SERVICE = """#!/bin/sh
# One TCP connection: read an HTTP request if one comes, answer one line.
first=""
while read -t 1 -r line; do
    line=$(printf '%s' "$line" | tr -d '\\r')
    [ -z "$first" ] && first=${line:-raw}
    [ -z "$line" ] && break
done
body="hostname=$(cat /run/hostname) uuid=$(cat /run/uuid) boot=$(cat /run/stratus/boot)"
body="$body tick=$(cat /run/stratus/tick 2>/dev/null || echo 0) ip=$(cat /run/ip)"
case "$first" in
    GET*|HEAD*) printf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s\\n' "$body";;
    *) printf '%s\\n' "$body";;
esac
"""

UDHCPC = """#!/bin/sh
# udhcpc event script: address, default route, classless static routes, DNS.
case "$1" in
    deconfig)
        ip addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
        set -- $staticroutes
        while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
        : > /etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
        [ -n "$hostname" ] && echo "$hostname" > /run/dhcp_hostname
        echo "$ip" > /run/ip
        ;;
esac
exit 0
"""

SHUTDOWN = f"""#!/bin/sh
echo "{MARKER_PREFIX} powering off" > /dev/console
[ -s /run/ticker.pid ] && kill "$(cat /run/ticker.pid)" 2>/dev/null
sync
umount /mnt/disk 2>/dev/null
"""

# busybox acpid: the power button event runs /etc/acpi/PWRF/00000080.
ACPID_CONF = "PWRF PWRF/00000080\n"
ACPI_POWER = "#!/bin/sh\npoweroff\n"

FILES: dict[str, tuple[str, int]] = {
    "init": (INIT, 0o755),
    "etc/inittab": (INITTAB, 0o644),
    "etc/stratus/boot": (BOOT, 0o755),
    "etc/stratus/ticker": (TICKER, 0o755),
    "etc/stratus/service": (SERVICE, 0o755),
    "etc/stratus/udhcpc": (UDHCPC, 0o755),
    "etc/stratus/shutdown": (SHUTDOWN, 0o755),
    "etc/acpid.conf": (ACPID_CONF, 0o644),
    "etc/acpi/PWRF/00000080": (ACPI_POWER, 0o755),
    "etc/hostname": (DEFAULT_HOSTNAME + "\n", 0o644),
    "etc/passwd": ("root:x:0:0:root:/root:/bin/sh\n", 0o644),
    "etc/group": ("root:x:0:\n", 0o644),
}
"""Path in the initramfs -> (content, mode)."""
