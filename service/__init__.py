"""Every operation a face offers, once: the CLI, the web app and the workers call these
functions and only render what they return (DESIGN §1). Each takes its collaborators
(settings, store) as arguments.

SCIM push (DESIGN §10): `service.scim_tokens` (issue, authenticate, expiry) and
`service.scim` (the SCIM operations on users and groups).
"""
