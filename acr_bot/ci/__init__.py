"""Reading a repository's own CI (GitHub Actions workflows) for `acr-bot init`."""
