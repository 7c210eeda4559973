"""The root-cause ledger (投诉根源台账)."""
