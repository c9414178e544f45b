package status

import "testing"

// testdata/info_{master,replica}.txt are INFO replication of the compose
// stack's master and one replica (Redis 7.0).
func TestParseReplication(t *testing.T) {
	m, err := ParseReplication(readFixture(t, "info_master.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Role != "master" || m.Offset != 11758811 || len(m.Replicas) != 2 {
		t.Fatalf("master = %+v", m)
	}
	want := []ReplicaInfo{
		{Addr: "redis-3:6379", State: "online", Offset: 11758811, Lag: 1},
		{Addr: "redis-2:6379", State: "online", Offset: 11758797, Lag: 1},
	}
	for i, w := range want {
		if m.Replicas[i] != w {
			t.Errorf("replica %d = %+v, want %+v", i, m.Replicas[i], w)
		}
	}

	r, err := ParseReplication(readFixture(t, "info_replica.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Role != "slave" || r.MasterHost != "redis-1:6379" || !r.LinkUp || len(r.Replicas) != 0 {
		t.Errorf("replica = %+v", r)
	}

	if _, err := ParseReplication("# Replication\r\n"); err == nil {
		t.Error("INFO without role parsed")
	}
}

func TestMergeReplicas(t *testing.T) {
	info := []ReplicaInfo{{Addr: "redis-3:6379", State: "online", Offset: 90, Lag: 0}, {Addr: "redis-2:6379", State: "online", Offset: 100, Lag: 1}}
	got := mergeReplicas(100, info, map[string]string{"redis-2:6379": "slave", "redis-3:6379": "slave", "redis-1:6379": "s_down,slave,disconnected"})
	want := []ReplicaView{
		{Addr: "redis-1:6379", Flags: "s_down,slave,disconnected"},
		{Addr: "redis-2:6379", State: "online", Behind: 0, Lag: 1, Connected: true, Flags: "slave"},
		{Addr: "redis-3:6379", State: "online", Behind: 10, Lag: 0, Connected: true, Flags: "slave"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
