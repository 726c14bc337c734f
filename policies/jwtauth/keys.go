package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/portico-gw/portico/internal/confval"
)

// minRSABits: shorter RSA keys are factorable by well-funded attackers; IdPs have used 2048+ for
// a decade.
const minRSABits = 2048

// loadKey turns one configured key into what jwt/v5 verifies with: []byte for HMAC,
// *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
func loadKey(k KeyConfig) (any, error) {
	if k.Secret != "" {
		return []byte(k.Secret), nil
	}
	data := []byte(k.PEM)
	if k.PEMFile != "" {
		var err error
		if data, err = confval.ReadFile(k.PEMFile); err != nil {
			return nil, fmt.Errorf("reading pem_file: %w", err)
		}
	}
	return parsePublicKey(data)
}

func parsePublicKey(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found (expected -----BEGIN PUBLIC KEY-----)")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE") {
			return nil, fmt.Errorf("PEM block is a %s: give the public key only", block.Type)
		}
		return nil, fmt.Errorf("unsupported PEM block %q (expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits; at least %d are required", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("unsupported public key type %T", key)
	}
	return key, nil
}

// fits reports whether key can verify alg. Checking this ourselves, besides jwt/v5's own type
// checks, means an issuer that allows both HS256 and RS256 can never have its RSA public key
// used as an HMAC secret (the classic key-confusion attack), whatever the token claims.
func fits(alg string, key any) bool {
	switch k := key.(type) {
	case []byte:
		return hmacSize[alg] > 0
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return (alg == "ES256" && k.Curve == elliptic.P256()) || (alg == "ES384" && k.Curve == elliptic.P384())
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

func keyKind(key any) string {
	switch k := key.(type) {
	case []byte:
		return "an HMAC secret"
	case *rsa.PublicKey:
		return "an RSA key"
	case *ecdsa.PublicKey:
		return "an EC " + k.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "an Ed25519 key"
	}
	return fmt.Sprintf("a %T", key)
}
