"""Files: upload, access rules, folders and statistics, and the signed links that serve files and recording assets."""
