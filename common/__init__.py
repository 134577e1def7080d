"""Small pieces every stack shares: config composition, user-facing errors, atomic file writes."""
