namespace HmmSim.Cli.Explore;

/// <summary>Short multi-threaded runs on one process, after tests/HmmSim.Tests/Hmm/ConcurrencyTests.cs,
/// bounded by iteration counts. The per-operation checker is off (it would serialize the threads);
/// each run ends with the DEBUG_VM checker and its data checks. A failed check throws.</summary>
internal static class ExploreConcurrency
{
    private const ulong PageSize = 4096;
    private const int IntsPerPage = (int)PageSize / 4;

    private static ulong Map(Process p, int pages)
    {
        Require(p.Mmap(0, (ulong)pages * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out var a) == Errno.None, "mmap failed");
        return a;
    }

    private static void Require(bool ok, string message)
    {
        if (!ok)
            throw new InvalidOperationException(message);
    }

    /// <summary>Runs the bodies on their own threads; rethrows the first failure.</summary>
    private static void RunThreads(params Action[] bodies)
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

    /// <summary>hmm-tests.c anon_teardown: a device READ of the buffer while another thread unmaps its
    /// upper half; the READ sees every page's data or fails with EFAULT, the lower half stays intact.</summary>
    public static void ReadRacingMunmap(MachineConfig config)
    {
        const int pages = 32, iterations = 25;
        using var m = new Machine(config);
        using (var p = m.CreateProcess())
        using (var d = p.OpenDmirror(0))
        {
            for (int it = 0; it < iterations; it++)
            {
                ulong a = Map(p, pages);
                for (int i = 0; i < pages; i++)
                    p.WriteInt32(a + ((ulong)i * PageSize), (it * 1000) + i);
                var mirror = new byte[pages * PageSize];
                DmirrorResult r = default;
                RunThreads(
                    () => r = d.Read(a, pages, mirror),
                    () => Require(p.Munmap(a + (pages / 2 * PageSize), pages / 2 * PageSize) == Errno.None, "munmap failed"));
                Require(r.Error is Errno.None or Errno.EFAULT, $"iteration {it}: READ returned {r.Error}");
                if (r.Error == Errno.None)
                    for (int i = 0; i < pages; i++)
                        Require(BitConverter.ToInt32(mirror, i * (int)PageSize) == (it * 1000) + i, $"iteration {it}: page {i} of the device copy differs");
                for (int i = 0; i < pages / 2; i++)
                    Require(p.ReadInt32(a + ((ulong)i * PageSize)) == (it * 1000) + i, $"iteration {it}: page {i} of the lower half differs");
                Require(p.Munmap(a, pages / 2 * PageSize) == Errno.None, "munmap failed");
            }
        }
        m.CheckInvariants();
    }

    /// <summary>Two threads store increasing values into their own pages while a third migrates the
    /// buffer to the device and back: every device copy holds values written between before and
    /// after the call, and at the end every int holds its writer's last value.</summary>
    public static void StoresRacingMigration(MachineConfig config)
    {
        const int pages = 16, writes = 400, migrations = 12;
        using var m = new Machine(config);
        using (var p = m.CreateProcess())
        using (var d = p.OpenDmirror(0))
        {
            ulong a = Map(p, pages);
            var last = new int[pages * IntsPerPage];
            var pending = new int[pages * IntsPerPage];

            Action Writer(int parity) => () =>
            {
                var rng = new Random(parity + 7);
                for (int k = 1; k <= writes; k++)
                {
                    int page = (2 * rng.Next(pages / 2)) + parity;
                    int idx = (page * IntsPerPage) + rng.Next(IntsPerPage);
                    ulong addr = a + ((ulong)idx * 4);
                    Volatile.Write(ref pending[idx], k);
                    p.WriteInt32(addr, k);
                    Volatile.Write(ref last[idx], k);
                    Require(p.ReadInt32(addr) == k, $"int {idx}: store {k} not read back");
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
                    Require(r.Error is Errno.None or Errno.ENOENT, $"MIGRATE_TO_DEV returned {r.Error}");
                    if (r.Error == Errno.None)
                    {
                        for (int j = 0; j < last.Length; j++)
                        {
                            int v = BitConverter.ToInt32(mirror, j * 4);
                            Require(v >= before[j] && v <= after[j], $"int {j}: device copy {v} outside [{before[j]}, {after[j]}]");
                        }
                    }
                    Require(d.MigrateToSystem(a, pages).Error == Errno.None, "MIGRATE_TO_SYS failed");
                }
            });
            for (int j = 0; j < last.Length; j++)
                Require(p.ReadInt32(a + ((ulong)j * 4)) == last[j], $"int {j}: lost the store of {last[j]}");
        }
        m.CheckInvariants();
    }
}
