"""Pure DataFrame -> DataFrame functions per layer: parse, conform, rules, SCD, Gold features."""
