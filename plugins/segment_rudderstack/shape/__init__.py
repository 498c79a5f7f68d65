"""The data's shape across the cutover: RudderStack's loader rules, the comparisons and their findings."""
