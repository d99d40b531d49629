"""The Pulumi program of quality-inspection, one module per concern; __main__.py composes them."""
