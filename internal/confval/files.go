package confval

import (
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxFileBytes bounds the config file and every file it names (certificates, keys, CA bundles,
// key files). The largest of them, a key file, holds about a million API keys at this size.
const MaxFileBytes = 64 << 20

// ReadFile reads a file the operator named, of at most MaxFileBytes: a regular file, or a pipe
// (a shell's <(...) for the config), read to its end. A device such as /dev/zero, which would be
// read until memory runs out, and a socket are refused.
func ReadFile(file string) ([]byte, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if err := readable(file, st); err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The file may have grown since Stat.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, tooLarge(file)
	}
	return data, nil
}

// LoadKeyPair is tls.LoadX509KeyPair reading its files with ReadFile.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}

// readable checks what Stat told of file: a regular file of at most MaxFileBytes, or a pipe.
func readable(file string, st fs.FileInfo) error {
	switch {
	case st.IsDir():
		return fmt.Errorf("%q is a directory, not a file", file)
	case st.Mode()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeSocket|fs.ModeIrregular) != 0:
		return fmt.Errorf("%q is a device or a socket, not a file", file)
	case st.Size() > MaxFileBytes:
		return tooLarge(file)
	}
	return nil
}

func tooLarge(file string) error {
	return fmt.Errorf("%q is larger than %d MiB", file, MaxFileBytes>>20)
}
