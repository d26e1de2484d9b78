namespace HmmSim.Tests.HmmDevice;

/// <summary>Real threads on one process: dmirror ioctls racing CPU faults, munmap and RELEASE.
/// Bounded by iteration counts; each ends with the DEBUG_VM checker clean and no data lost. The
/// per-operation checker is off here: it takes the machine's write lock after every operation and
/// would serialize the threads (and cost seconds); the final check and the leak check at Dispose
/// still run.</summary>
public class ConcurrencyTests
{
    private const ulong PageSize = 4096;
    private const int IntsPerPage = (int)PageSize / 4;
    private const Prot Rw = Prot.Read | Prot.Write;
    private const MapFlags PrivAnon = MapFlags.Private | MapFlags.Anonymous;

    public static TheoryData<DevicePrivateDesign> Designs =>
        [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    private static ulong Map(Process p, int pages)
    {
        Assert.Equal(Errno.None, p.Mmap(0, (ulong)pages * PageSize, Rw, PrivAnon, out var a));
        return a;
    }

    /// <summary>Runs the bodies on their own threads and rethrows the first failure.</summary>
    internal static void RunThreads(params Action[] bodies)
    {
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = bodies.Select(b => new Thread(() =>
        {
            try
            {
                b();
            }
            catch (Exception e)
            {
                errors.Enqueue(e);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (errors.TryDequeue(out var first))
            throw new AggregateException(first);
    }

    /// <summary>hmm-tests.c anon_teardown, many times: a device READ of the whole buffer while another
    /// thread unmaps its upper half. The READ either sees every page's data or fails with EFAULT.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceReadRacingMunmapOfHalfTheBufferSeesDataOrEfault(DevicePrivateDesign design)
    {
        const int pages = 32, iterations = 150;
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        int ok = 0, efault = 0;
        for (int it = 0; it < iterations; it++)
        {
            ulong a = Map(p, pages);
            for (int i = 0; i < pages; i++)
                p.WriteInt32(a + (ulong)i * PageSize, it * 1000 + i);
            var mirror = new byte[pages * PageSize];
            DmirrorResult r = default;
            RunThreads(
                () => r = d.Read(a, pages, mirror),
                () => Assert.Equal(Errno.None, p.Munmap(a + pages / 2 * PageSize, pages / 2 * PageSize)));
            Assert.True(r.Error is Errno.None or Errno.EFAULT, $"iteration {it}: {r.Error}");
            if (r.Error == Errno.None)
            {
                ok++;
                Assert.Equal((ulong)pages, r.CPages);
                for (int i = 0; i < pages; i++)
                    Assert.Equal(it * 1000 + i, BitConverter.ToInt32(mirror, i * (int)PageSize));
            }
            else
                efault++;
            // The lower half is intact.
            for (int i = 0; i < pages / 2; i++)
                Assert.Equal(it * 1000 + i, p.ReadInt32(a + (ulong)i * PageSize));
            Assert.Equal(Errno.None, p.Munmap(a, pages / 2 * PageSize));
        }
        Assert.Equal(iterations, ok + efault);
        m.CheckInvariants();
    }

    /// <summary>Two threads store increasing values into their own pages (and read them back) while a
    /// third migrates the whole buffer to the device and back. Each MIGRATE_TO_DEV copy holds, for
    /// every int, a value written between before and after the call; at the end every int holds the
    /// last value its writer stored.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void CpuFaultsRacingMigrationToAndFromDeviceLoseNoWrite(DevicePrivateDesign design)
    {
        const int pages = 32, writes = 2000, migrations = 80;
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        ulong a = Map(p, pages);
        var last = new int[pages * IntsPerPage];   // per int: the last value its writer stored
        var pending = new int[pages * IntsPerPage];   // per int: the value its writer is storing
        int migratedOk = 0;

        Action Writer(int parity) => () =>
        {
            var rng = new Random(parity + 7);
            for (int k = 1; k <= writes; k++)
            {
                int page = 2 * rng.Next(pages / 2) + parity;
                int idx = page * IntsPerPage + rng.Next(IntsPerPage);
                ulong addr = a + (ulong)idx * 4;
                Volatile.Write(ref pending[idx], k);
                p.WriteInt32(addr, k);
                Volatile.Write(ref last[idx], k);
                Assert.Equal(k, p.ReadInt32(addr));
                int other = page * IntsPerPage + rng.Next(IntsPerPage);
                Assert.Equal(Volatile.Read(ref last[other]), p.ReadInt32(a + (ulong)other * 4));
            }
        };

        RunThreads(Writer(0), Writer(1), () =>
        {
            var mirror = new byte[pages * PageSize];
            for (int i = 0; i < migrations; i++)
            {
                var before = (int[])last.Clone();
                var r = d.MigrateToDevice(a, pages, mirror);
                var after = (int[])pending.Clone();
                // ENOENT: a CPU fault took a page back before the read-back of the mirror.
                Assert.True(r.Error is Errno.None or Errno.ENOENT, $"MIGRATE_TO_DEV: {r.Error}");
                if (r.Error == Errno.None)
                {
                    Interlocked.Increment(ref migratedOk);
                    for (int j = 0; j < last.Length; j++)
                    {
                        int v = BitConverter.ToInt32(mirror, j * 4);
                        Assert.True(v >= before[j] && v <= after[j], $"int {j}: device copy {v} outside [{before[j]}, {after[j]}]");
                    }
                }
                Assert.Equal(Errno.None, d.MigrateToSystem(a, pages).Error);
            }
        });

        Assert.True(migratedOk > 0);
        for (int j = 0; j < last.Length; j++)
            Assert.Equal(last[j], p.ReadInt32(a + (ulong)j * 4));
        m.CheckInvariants();
    }

    /// <summary>Two threads store into and read back their own pages while a third migrates the buffer to
    /// the device and then RELEASEs the device's chunks (evicting every device page to RAM).</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void CpuFaultsRacingReleaseLoseNoWrite(DevicePrivateDesign design)
    {
        const int pages = 32, writes = 2000, releases = 50;
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var p = m.CreateProcess();
        using var d = p.OpenDmirror(1);
        ulong a = Map(p, pages);
        var last = new int[pages * IntsPerPage];

        Action Writer(int parity) => () =>
        {
            var rng = new Random(parity + 11);
            for (int k = 1; k <= writes; k++)
            {
                int page = 2 * rng.Next(pages / 2) + parity;
                int idx = page * IntsPerPage + rng.Next(IntsPerPage);
                ulong addr = a + (ulong)idx * 4;
                p.WriteInt32(addr, k);
                Volatile.Write(ref last[idx], k);
                Assert.Equal(k, p.ReadInt32(addr));
            }
        };

        RunThreads(Writer(0), Writer(1), () =>
        {
            var mirror = new byte[pages * PageSize];
            for (int i = 0; i < releases; i++)
            {
                var r = d.MigrateToDevice(a, pages, mirror);
                Assert.True(r.Error is Errno.None or Errno.ENOENT, $"MIGRATE_TO_DEV: {r.Error}");
                Assert.Equal(Errno.None, d.Release().Error);
            }
        });

        var snap = new byte[pages];
        Assert.Equal(Errno.None, d.Snapshot(a, pages, snap).Error);
        Assert.DoesNotContain(snap, b => (b & 0xF0) == (byte)DmirrorProt.DevPrivateLocal);
        for (int j = 0; j < last.Length; j++)
            Assert.Equal(last[j], p.ReadInt32(a + (ulong)j * 4));
        m.CheckInvariants();
    }
    /// <summary>READ, WRITE and both MIGRATE ioctls on ONE dmirror handle from three threads, each over its
    /// own range: no call may see another's data (the copies go through per-call scratch, not a buffer
    /// shared by the file), and every call returns exactly its own range's bytes.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void IoctlsOnOneHandleFromThreeThreadsOverDisjointRangesKeepTheirOwnData(DevicePrivateDesign design)
    {
        const int threads = 3, pages = 24, rounds = 40;
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        ulong a = Map(p, threads * pages);
        int checkedCalls = 0;

        Action Worker(int t) => () =>
        {
            ulong start = a + (ulong)(t * pages) * PageSize;
            var buf = new byte[pages * PageSize];
            var back = new byte[pages * PageSize];
            for (int round = 0; round < rounds; round++)
            {
                // A value per (thread, round, page, int) that no other thread ever writes.
                int Tag(int page, int k) => (t << 24) | (round << 16) | (page << 8) | (k & 0xff);
                for (int page = 0; page < pages; page++)
                {
                    for (int k = 0; k < IntsPerPage; k += 97)
                        BitConverter.TryWriteBytes(buf.AsSpan(page * (int)PageSize + k * 4), Tag(page, k));
                }
                var r = d.Write(start, pages, buf);
                Assert.Equal(Errno.None, r.Error);
                Assert.Equal((ulong)pages, r.CPages);
                Array.Clear(back);
                Assert.Equal(Errno.None, d.Read(start, pages, back).Error);
                Assert.Equal(buf, back);
                Array.Clear(back);
                r = d.MigrateToDevice(start, pages, back);
                Assert.Equal(Errno.None, r.Error);
                Assert.Equal((ulong)pages, r.CPages);
                Assert.Equal(buf, back);
                Assert.Equal(Errno.None, d.MigrateToSystem(start, pages).Error);
                for (int page = 0; page < pages; page += 5)
                    Assert.Equal(Tag(page, 0), p.ReadInt32(start + (ulong)page * PageSize));
                Interlocked.Increment(ref checkedCalls);
            }
        };

        RunThreads(Enumerable.Range(0, threads).Select(Worker).ToArray());
        Assert.Equal(threads * rounds, checkedCalls);
        m.CheckInvariants();
    }
}
