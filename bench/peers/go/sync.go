// Go's side of the channel and lock benchmarks (bench/sync.c): a buffered
// channel for mpsc, channels of one for oneshots, sync.Mutex for the lock.
// GOMAXPROCS=2.
package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// 5 producers x 200,000 uint64 through a channel buffered to 1,024.
func mpscBounded() {
	const producers = 5
	const per = 200000
	var v []float64
	for r := 0; r < runs; r++ {
		t0 := time.Now()
		ch := make(chan uint64, 1024)
		var wg sync.WaitGroup
		for p := 0; p < producers; p++ {
			wg.Add(1)
			go func() {
				for i := uint64(0); i < per; i++ {
					ch <- i
				}
				wg.Done()
			}()
		}
		go func() {
			wg.Wait()
			close(ch)
		}()
		var n, sum uint64
		for x := range ch {
			n++
			sum += x
		}
		if n != producers*per || sum != producers*(per*(per-1)/2) {
			panic("mpsc lost messages")
		}
		v = append(v, float64(time.Since(t0).Nanoseconds())/1e6)
	}
	report("mpsc_bounded", v, "ms")
}

// The scheduler benchmark's ping_pong, under the name bench/sync.c uses
// for it with zokio's channels.
func pingPongOneshot() {
	const pairs = 1000
	var v []float64
	for r := 0; r < runs; r++ {
		var total float64
		for k := 0; k < 20; k++ {
			var rem int64 = pairs
			done := make(chan struct{}, 1)
			t0 := time.Now()
			go func() {
				for i := 0; i < pairs; i++ {
					go func() {
						c1 := make(chan byte, 1)
						c2 := make(chan byte, 1)
						go func() {
							c2 <- <-c1
						}()
						c1 <- 1
						<-c2
						if atomic.AddInt64(&rem, -1) == 0 {
							done <- struct{}{}
						}
					}()
				}
			}()
			<-done
			total += float64(time.Since(t0).Nanoseconds())
		}
		v = append(v, total/20/1000)
	}
	report("ping_pong_oneshot", v, "us/round")
}

// 4 goroutines x 250,000 lock / increment / unlock of one sync.Mutex.
func mutexContention() {
	const lockers = 4
	const iters = 250000
	var v []float64
	for r := 0; r < runs; r++ {
		var m sync.Mutex
		count := 0
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < lockers; i++ {
			wg.Add(1)
			go func() {
				for j := 0; j < iters; j++ {
					m.Lock()
					count++
					m.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		v = append(v, float64(time.Since(t0).Nanoseconds())/1e6)
		if count != lockers*iters {
			panic("mutex lost increments")
		}
	}
	report("mutex_contention", v, "ms")
}
