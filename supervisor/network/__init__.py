"""Container networks: bridges, per-container namespaces, published ports, names.

Pure cores (`ipam`, `ports`, `etcfiles`) decide; `records` keeps networks and endpoints
in the metadata store; `netlink` is the only place that touches links, addresses,
routes and namespaces (pyroute2, no `ip` processes); `proxy` relays published ports;
`manager` ties them together for the engine and the API.
"""
