package server

import (
	"os"
	"path/filepath"

	"fusebox/breaker"
	"fusebox/internal/config"
	"fusebox/internal/image"
)

// imageConfig translates the file's images and registries sections,
// reading each registry's secrets from where the file says.
func imageConfig(c *config.Config) (image.Config, error) {
	ic := image.Config{
		Transfer:     c.Images.Transfer,
		DockerConfig: dockerConfigPath(c.Images.DockerConfig),
		Breaker: breaker.Settings{
			ConsecutiveFailures: c.Images.RegistryBreaker.FailureThreshold,
			OpenDuration:        c.Images.RegistryBreaker.ResetTimeout,
		},
		SpoolDir: filepath.Join(c.DataDir, "spool"),
	}
	for _, r := range c.Registries {
		pw, tok, err := r.Secrets(os.LookupEnv)
		if err != nil {
			return image.Config{}, err
		}
		ic.Registries = append(ic.Registries, image.Registry{Host: r.Host, Username: r.Username, Password: pw, IdentityToken: tok})
	}
	return ic, nil
}

// dockerConfigPath is docker login's config.json: the file's, else
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func dockerConfigPath(p string) string {
	if p != "" {
		return p
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".docker", "config.json")
	}
	return ""
}
