"""Storage: SQLAlchemy Core tables, queries and migrations. The only package that writes SQL."""
