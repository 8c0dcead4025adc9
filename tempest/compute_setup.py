"""TEMPEST_SETUP for compute: two bootable (fake-driver) images, then the
[compute] and [compute-feature-enabled] sections for the all-in-one (migrations
on when it runs two or more compute hosts, as run-compute.sh does).
Reads STRATUS_AUTH_URL and STRATUS_ADMIN_PASSWORD; prints tempest.conf text."""

from __future__ import annotations

import os

import httpx

auth = os.environ["STRATUS_AUTH_URL"]
user = {"name": "admin", "domain": {"id": "default"},
        "password": os.environ["STRATUS_ADMIN_PASSWORD"]}
body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                 "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
resp = httpx.post(f"{auth}/auth/tokens", json=body)
resp.raise_for_status()
token = resp.headers["X-Subject-Token"]
catalog = resp.json()["token"]["catalog"]
image_url = next(e["url"] for s in catalog if s["type"] == "image" for e in s["endpoints"]
                 if e["interface"] == "public")
ids = []
for name in ("tempest-image", "tempest-image-alt"):
    headers = {"X-Auth-Token": token}
    image = httpx.post(f"{image_url}/v2/images", headers=headers, json={
        "name": name, "disk_format": "qcow2", "container_format": "bare",
        "visibility": "public"}).json()
    httpx.put(f"{image_url}/v2/images/{image['id']}/file", content=os.urandom(4096),
              headers={**headers, "Content-Type": "application/octet-stream"}
              ).raise_for_status()
    ids.append(image["id"])
compute_url = next(e["url"] for s in catalog if s["type"] == "compute" for e in s["endpoints"]
                   if e["interface"] == "public")
hosts = len(httpx.get(f"{compute_url}/os-hypervisors", headers={"X-Auth-Token": token}
                      ).json()["hypervisors"])
multi = "true" if hosts >= 2 else "false"  # migrations need a second compute host
# The scheduler's filters, by Nova's names (Tempest skips tests of filters not listed).
filters = ",".join(("ComputeFilter", "AvailabilityZoneFilter", "RamFilter", "DiskFilter",
                    "ImagePropertiesFilter",
                    "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter",
                    "SameHostFilter", "DifferentHostFilter",
                    "AggregateInstanceExtraSpecsFilter"))
print(f"""
[service_available]
nova = true
glance = true

[compute]
image_ref = {ids[0]}
image_ref_alt = {ids[1]}
flavor_ref = 1
flavor_ref_alt = 2
min_microversion = 2.1
max_microversion = 2.96
build_timeout = 60
build_interval = 1
min_compute_nodes = {hosts}

[compute-feature-enabled]
scheduler_enabled_filters = {filters}
resize = true
cold_migration = {multi}
live_migration = {multi}
pause = true
suspend = true
shelve = true
shelve_migrate = {multi}
rescue = true
snapshot = true
console_output = true
change_password = true
interface_attach = false
vnc_console = false
spice_console = false
serial_console = false
metadata_service = false
config_drive = false
personality = false
block_migration_for_live_migration = {multi}
enable_instance_password = true
stable_rescue = false
hostname_fqdn_sanitization = true
""")
