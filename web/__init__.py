"""The web face: one ASGI app (`web.app.create_app`). The SCIM 2.0 endpoint lives under
`/scim/v2/{directory}`; the operator console (`web.console`) under `/console`. Routes only parse and
render; every operation is a `service` function."""
