"""Read side: attribution of conversions to messages, and reports."""
