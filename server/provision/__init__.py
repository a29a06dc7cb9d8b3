"""Server-to-server provisioning for LMS back ends (docs/LMS.md "Server-to-server provisioning"):
service credentials, and users, rooms and memberships kept by external id."""
