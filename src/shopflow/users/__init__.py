"""People who sign in to the admin UI: accounts and roles (`manage`), password hashes
(`passwords`), sign-in sessions and their CSRF tokens (`sessions`)."""
