"""Reports for the data team and auditors."""
