"""Reading the files people send us (KoboToolbox exports, capacity templates) into canonical all-string tables."""
