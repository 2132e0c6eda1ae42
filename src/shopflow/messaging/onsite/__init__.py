"""On-site tracking: the browser's events, forms and push opt-ins sent with the public site key,
and the identity a tracked email link hands to the browser (docs/onsite.md)."""
