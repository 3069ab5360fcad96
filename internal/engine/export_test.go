package engine

// APIVersions returns the API versions the client's two Docker clients
// speak now (negotiated, or their default before that).
func APIVersions(c *Client) (api, stream string) {
	return c.api.ClientVersion(), c.stream.ClientVersion()
}
