// Go's random 4 KiB file reads for bench/io_compare.sh: COUNT reads of
// 4 KiB-aligned blocks of PATH (written by bench/file_blocks.c), at random
// offsets (the same sequence in every implementation, see file_blocks.c),
// with CONCURRENCY goroutines sharing one *os.File through ReadAt (pread).
// Run with GOMAXPROCS=2 (the script does). Every block read is checked
// against its stamp; a wrong block is a hard error.
//
//	fileread PATH COUNT CONCURRENCY
//
// Prints "RESULT file_rand_read_4k go <reads/s> reads/s".
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const block = 4096

func offsets(count int, blocks uint64) []int64 {
	offs := make([]int64, count)
	s := uint64(42)
	for i := range offs {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		offs[i] = int64((z % blocks) * block)
	}
	return offs
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "fileread: "+format+"\n", a...)
	fmt.Println("ERROR file_rand_read_4k go")
	os.Exit(1)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: fileread PATH COUNT CONCURRENCY")
		os.Exit(2)
	}
	count, err1 := strconv.Atoi(os.Args[2])
	conc, err2 := strconv.Atoi(os.Args[3])
	if err1 != nil || err2 != nil || count < 1 || conc < 1 {
		fmt.Fprintln(os.Stderr, "fileread: COUNT and CONCURRENCY must be positive integers")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st, err := f.Stat()
	if err != nil || st.Size() < block {
		fmt.Fprintln(os.Stderr, "fileread: the file holds no whole block")
		os.Exit(1)
	}
	offs := offsets(count, uint64(st.Size())/block)
	var next int64 = -1
	var wg sync.WaitGroup
	t0 := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, block)
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(len(offs)) {
					return
				}
				if _, err := f.ReadAt(buf, offs[i]); err != nil {
					fail("pread at %d: %v", offs[i], err)
				}
				idx := uint64(offs[i]) / block
				if binary.LittleEndian.Uint64(buf) != idx ||
					binary.LittleEndian.Uint64(buf[block-8:]) != ^idx {
					fail("block %d read back wrong", idx)
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	fmt.Printf("RESULT file_rand_read_4k go %.0f reads/s\n", float64(count)/secs)
}
