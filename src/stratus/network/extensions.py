"""The extension aliases this cloud implements, exactly (Tempest and the SDK read them)."""

from __future__ import annotations

from typing import Any

UPDATED = "2026-01-01T00:00:00-00:00"

ALIASES: dict[str, tuple[str, str]] = {
    "agent": ("agent", "The agent management extension."),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "auto-allocated-topology": ("Auto Allocated Topology Services",
                                "Auto Allocated Topology Services."),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external "
                "application"),
    "external-net": ("Neutron external network", "Adds external network attribute to network "
                     "resource."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode",
                    "Extension of the router abstraction for specifying whether SNAT should "
                    "occur on the external gateway"),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "extraroute-atomic": ("Atomically add/remove extra routes",
                          "Edit extra routes of a router on server side by atomically adding/"
                          "removing extra routes"),
    "ip-substring-filtering": ("IP address substring filtering", "Provides IP address "
                               "substring filtering when listing ports"),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a "
                         "network resource."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is "
                   "enabled."),
    "port-security": ("Port Security", "Provides port security"),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id "
                   "field is enabled."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "quotas": ("Quota management support", "Expose functions for quotas management per "
               "tenant"),
    "quota-check-limit": ("Quota engine limit check", "Support for checking the resource "
                          "usage before applying a new quota limit"),
    "quota_details": ("Quota details management support", "Expose functions for quotas usage "
                      "statistics per project"),
    "router": ("Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 "
               "Neutron networks and access to external networks via a NAT gateway."),
    "security-group": ("security-group", "The security groups extension."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "subnet_allocation": ("Subnet Allocation", "Enables allocation of subnets from a subnet "
                          "pool"),
    "default-subnetpools": ("Default Subnetpools", "Provides ability to mark and use a "
                            "subnetpool as the default."),
    "subnet-external-network": ("Subnet External Network", "Informs if the subnet is "
                                "associated to an external network."),
    "standard-attr-description": ("standard-attr-description", "Extension to add "
                                  "descriptions to standard attributes"),
    "standard-attr-revisions": ("Resource revision numbers", "This extension will display "
                                "the revision number of neutron resources."),
    "standard-attr-tag": ("Tag support for resources with standard attribute",
                          "Enables to set tag on resources with standard attribute."),
    "tag": ("Tag support", "Enables to set tag on resources."),
    "standard-attr-timestamp": ("Resource timestamps", "Adds created_at and updated_at fields "
                                "to all Neutron resources that have Neutron standard "
                                "attributes."),
    "stateful-security-group": ("Stateful security group", "Indicates if the security group "
                                "is stateful or not"),
}


def extension(alias: str) -> dict[str, Any]:
    name, description = ALIASES[alias]
    return {"alias": alias, "name": name, "description": description, "updated": UPDATED,
            "links": []}
