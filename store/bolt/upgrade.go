package bolt

import (
	"bytes"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"
)

// upgradeChunkSize is how many records one transaction of an upgrade
// reads (a variable for tests).
var upgradeChunkSize = 100_000

// afterUpgradeChunk is called after each committed transaction of an
// upgrade; tests make it fail to interrupt one.
var afterUpgradeChunk = func() error { return nil }

// upgrade counts what prepare did.
type upgrade struct {
	read       int // records read (0: the file was ready)
	recoded    int // JSON records rewritten in the compact encoding
	indexed    int // expiry index entries written
	unreadable int // JSON records that did not decode, left as they were
}

// prepare creates the buckets of a new file and brings a file that is not
// ready to schema 2: every membership, session and catalog entry still in
// JSON is rewritten in the compact encoding, and the expiry index is built
// from scratch. A file is ready when its schema is 2, its index bucket
// exists and keyIndexReady marks the index complete.
//
// The first transaction sets the schema to 2 (so that a build that knows
// only schema 1 refuses the file from then on) and removes the mark. The
// records are then read in transactions of upgradeChunkSize, so that the
// heap holds one chunk at a time, and the last transaction sets the mark.
// An upgrade that stops part way leaves every record readable, in one
// encoding or the other, and a partial index that the next Open discards
// and builds again.
func prepare(db *bbolt.DB) (up upgrade, err error) {
	ready := false
	err = db.Update(func(tx *bbolt.Tx) error {
		hadIndex := tx.Bucket(bucketExpiry) != nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case bytes.Equal(v, schemaV2) && meta.Get(keyIndexReady) != nil && hadIndex:
			ready = true
			return nil
		case v == nil, bytes.Equal(v, schemaV1), bytes.Equal(v, schemaV2):
			if err := meta.Put(keySchema, schemaV2); err != nil {
				return err
			}
			if err := meta.Delete(keyIndexReady); err != nil {
				return err
			}
			if err := tx.DeleteBucket(bucketExpiry); err != nil {
				return fmt.Errorf("emptying the expiry index: %w", err)
			}
			_, err := tx.CreateBucket(bucketExpiry)
			return err
		default:
			return fmt.Errorf("unsupported schema version %q (this build reads %q and %q)", v, schemaV1, schemaV2)
		}
	})
	if err != nil || ready {
		return up, err
	}
	for _, name := range [][]byte{bucketMemberships, bucketResources, bucketSessions, bucketPending, bucketReplays} {
		var after []byte // the last key read; nil before the first chunk
		for {
			err := db.Update(func(tx *bbolt.Tx) error {
				var err error
				after, err = upgradeChunk(tx, name, after, &up)
				return err
			})
			if err == nil {
				err = afterUpgradeChunk()
			}
			if err != nil {
				return up, fmt.Errorf("upgrading the file to schema 2: %s: %w", name, err)
			}
			if after == nil {
				break
			}
		}
	}
	err = db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyIndexReady, []byte("1")) })
	if err != nil {
		return up, fmt.Errorf("upgrading the file to schema 2: marking the expiry index complete: %w", err)
	}
	return up, nil
}

// recoders rewrite a JSON record of a bucket in the compact encoding;
// buckets without one (pending logins, replays) are already current.
var recoders = map[string]func(key, v []byte) ([]byte, error){
	string(bucketMemberships): func(key, v []byte) ([]byte, error) {
		m, err := decodeMembership(key, v)
		if err != nil {
			return nil, err
		}
		return encodeMembership(m), nil
	},
	string(bucketResources): func(key, v []byte) ([]byte, error) {
		r, err := decodeResource(key, v)
		if err != nil {
			return nil, err
		}
		return encodeResource(r), nil
	},
	string(bucketSessions): func(key, v []byte) ([]byte, error) {
		s, err := decodeSession(key, v)
		if err != nil {
			return nil, err
		}
		return encodeSession(s), nil
	},
}

// isJSON reports whether v, a value of bucket name, is a schema 1 JSON record.
func isJSON(name, v []byte) bool {
	if bytes.Equal(name, bucketSessions) {
		return len(v) > expiryLen && v[expiryLen] == '{'
	}
	return len(v) > 0 && v[0] == '{'
}

// upgradeChunk reads up to upgradeChunkSize records of bucket name from the
// first key after after (from the start when after is nil), rewrites the
// JSON ones compactly and writes the index entries of expiring ones, both
// in key order (what bbolt takes fastest). It returns the last key read,
// nil when it reached the end of the bucket, and adds to up.
func upgradeChunk(tx *bbolt.Tx, name, after []byte, up *upgrade) (last []byte, err error) {
	b := tx.Bucket(name)
	recode := recoders[string(name)]
	kind, expiring := byte(0), false
	for k, n := range expiringBuckets {
		if bytes.Equal(n, name) {
			kind, expiring = k, true
		}
	}
	c := b.Cursor()
	k, v := c.First()
	if after != nil {
		if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	}
	type rewrite struct{ key, value []byte }
	var rewrites []rewrite
	var entries [][]byte
	read := 0
	for ; k != nil && read < upgradeChunkSize; k, v = c.Next() {
		read++
		last = k
		if recode != nil && isJSON(name, v) {
			if nv, err := recode(k, v); err == nil {
				rewrites = append(rewrites, rewrite{bytes.Clone(k), nv})
				v = nv
			} else {
				up.unreadable++
			}
		}
		if expiring {
			if exp, ok := indexExpiry(v); ok {
				entries = append(entries, indexKey(kind, exp, k))
			}
		}
	}
	up.read += read
	if k == nil {
		last = nil
	} else {
		last = bytes.Clone(last)
	}
	b.FillPercent = batchFillPercent
	for _, r := range rewrites { // in key order, as the cursor read them
		if err := b.Put(r.key, r.value); err != nil {
			return nil, fmt.Errorf("rewriting %q: %w", r.key, err)
		}
	}
	up.recoded += len(rewrites)
	slices.SortFunc(entries, bytes.Compare)
	idx := tx.Bucket(bucketExpiry)
	idx.FillPercent = indexFillPercent
	for _, e := range entries {
		if err := idx.Put(e, nil); err != nil {
			return nil, fmt.Errorf("writing expiry index entry: %w", err)
		}
	}
	up.indexed += len(entries)
	return last, nil
}
