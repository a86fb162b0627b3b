// Go's side of the scheduler benchmarks run by bench/compare.sh: the same
// workloads as bench/sched.c with goroutines, GOMAXPROCS=2. A oneshot is a
// channel with a buffer of one. Prints "RESULT <workload> go <median> <unit>".
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const runs = 5

func report(workload string, v []float64, unit string) {
	sort.Float64s(v)
	fmt.Printf("RESULT %s go %.1f %s\n", workload, v[len(v)/2], unit)
}

func spawnManyLocal() {
	const n = 1000000
	var v []float64
	for r := 0; r < runs; r++ {
		done := make(chan struct{})
		go func() {
			var rem int64 = n
			finished := make(chan struct{}, 1)
			t0 := time.Now()
			for i := 0; i < n; i++ {
				go func() {
					if atomic.AddInt64(&rem, -1) == 0 {
						finished <- struct{}{}
					}
				}()
			}
			<-finished
			v = append(v, float64(time.Since(t0).Nanoseconds())/n)
			close(done)
		}()
		<-done
	}
	report("spawn_many_local", v, "ns/task")
}

func spawnJoinRemote() {
	const n = 100000
	var v []float64
	for r := 0; r < runs; r++ {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			ch := make(chan int, 1)
			go func(i int) { ch <- i }(i)
			<-ch
		}
		v = append(v, float64(time.Since(t0).Nanoseconds())/n)
	}
	report("spawn_join_remote", v, "ns/task")
}

func yieldMany() {
	const tasks, yields = 200, 10000
	var v []float64
	for r := 0; r < runs; r++ {
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < tasks; i++ {
			wg.Add(1)
			go func() {
				for j := 0; j < yields; j++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		v = append(v, float64(time.Since(t0).Nanoseconds())/(tasks*yields))
	}
	report("yield_many", v, "ns/yield")
}

func pingPong() {
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
						c1 := make(chan struct{}, 1)
						c2 := make(chan struct{}, 1)
						go func() {
							<-c1
							c2 <- struct{}{}
						}()
						c1 <- struct{}{}
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
	report("ping_pong", v, "us/round")
}

func chainedSpawn() {
	const depth = 1000
	var iter func(done chan struct{}, n int)
	iter = func(done chan struct{}, n int) {
		if n == 0 {
			done <- struct{}{}
		} else {
			go iter(done, n-1)
		}
	}
	var v []float64
	for r := 0; r < runs; r++ {
		var total float64
		for k := 0; k < 100; k++ {
			done := make(chan struct{}, 1)
			t0 := time.Now()
			go iter(done, depth)
			<-done
			total += float64(time.Since(t0).Nanoseconds())
		}
		v = append(v, total/100/1000)
	}
	report("chained_spawn", v, "us/chain")
}

func timers() {
	const n = 100000
	var total, p50, p99 []float64
	for r := 0; r < runs; r++ {
		late := make([]int64, n)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			x := uint32(i) * 2654435761
			d := time.Duration(1+(x>>8)%50) * time.Millisecond
			go func(i int, d time.Duration) {
				deadline := time.Now().Add(d)
				time.Sleep(time.Until(deadline))
				late[i] = int64(time.Since(deadline))
				wg.Done()
			}(i, d)
		}
		wg.Wait()
		total = append(total, float64(time.Since(t0).Nanoseconds())/1e6)
		sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
		p50 = append(p50, float64(late[n/2])/1e3)
		p99 = append(p99, float64(late[n*99/100])/1e3)
	}
	report("timers_total", total, "ms")
	report("timers_late_p50", p50, "us")
	report("timers_late_p99", p99, "us")
}

func rssBytes() float64 {
	b, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(b))
	res, _ := strconv.ParseFloat(f[1], 64)
	return res * float64(os.Getpagesize())
}

// In a child process per measurement, like the other implementations.
func idleChild(n int) {
	block := make(chan struct{})
	var parked int64
	before := rssBytes()
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&parked, 1)
			<-block
		}()
	}
	for atomic.LoadInt64(&parked) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	fmt.Println((rssBytes() - before) / float64(n))
}

func idleMemory(n int) float64 {
	out, err := exec.Command(os.Args[0], "idle-child", strconv.Itoa(n)).Output()
	if err != nil {
		panic(err)
	}
	v, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	return v
}

func main() {
	runtime.GOMAXPROCS(2)
	if len(os.Args) > 2 && os.Args[1] == "idle-child" {
		n, _ := strconv.Atoi(os.Args[2])
		idleChild(n)
		return
	}
	only := ""
	if len(os.Args) > 1 {
		only = os.Args[1]
	}
	want := func(name string) bool { return only == "" || only == name }
	if want("spawn_many_local") {
		spawnManyLocal()
	}
	if want("spawn_join_remote") {
		spawnJoinRemote()
	}
	if want("yield_many") {
		yieldMany()
	}
	if want("ping_pong") {
		pingPong()
	}
	if want("chained_spawn") {
		chainedSpawn()
	}
	if want("timers") {
		timers()
	}
	if want("mpsc_bounded") {
		mpscBounded()
	}
	if want("ping_pong_oneshot") {
		pingPongOneshot()
	}
	if want("mutex_contention") {
		mutexContention()
	}
	if want("idle_memory") {
		var v []float64
		for r := 0; r < runs; r++ {
			v = append(v, idleMemory(1000000))
		}
		report("idle_memory_1m", v, "bytes/task")
		v = nil
		for r := 0; r < runs; r++ {
			v = append(v, idleMemory(100000))
		}
		report("idle_memory_100k", v, "bytes/task")
	}
}
