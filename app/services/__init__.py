"""Business rules: plain functions, each checking first, then acting, then committing once."""
