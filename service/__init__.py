"""Every operation a face (the CLI, the Celery tasks, the web app) offers, once.

Each is a typed function that takes the settings and a store and returns a value; faces
only parse their input and render that value. Below this layer are the engine
(`reconcile.cycle`, `reconcile.apply`), the connectors and the store (DESIGN §1).

SCIM push (DESIGN §10): `service.scim_tokens` (issue, authenticate, expiry) and
`service.scim` (the SCIM operations on users and groups).
"""
