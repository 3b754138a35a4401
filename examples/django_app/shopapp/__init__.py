"""A minimal embedded Shopify app backend on Django, with expiring offline tokens."""
