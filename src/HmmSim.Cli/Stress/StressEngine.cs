using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace HmmSim.Cli.Stress;

/// <summary>What a stress run is asked to do.</summary>
/// <param name="Threads">Worker threads; thread t works in process t % 2.</param>
/// <param name="Duration">How long the workers run (they also stop at <paramref name="MaxOperations"/>).</param>
/// <param name="Seed">Seeds every thread's choice of operations (not the interleaving, which the OS picks).</param>
/// <param name="Design">The device-private design of the machine.</param>
/// <param name="MaxOperations">Stop after this many operations in all (0: no limit).</param>
/// <param name="HangTimeout">A run whose workers have not all finished this long after the deadline is reported as hung.</param>
/// <param name="StopRequested">Asked between operations: true stops the workers early (Ctrl-C), and the
/// run is checked and reported as far as it got.</param>
/// <param name="Tick">Told the operation count every 4096 operations (a progress line).</param>
internal sealed record StressOptions(int Threads, TimeSpan Duration, ulong Seed, DevicePrivateDesign Design, long MaxOperations = 0, TimeSpan? HangTimeout = null,
    Func<bool>? StopRequested = null, Action<long>? Tick = null);

/// <summary>The outcome of one stress run.</summary>
internal sealed record StressResult(bool Clean, long Operations, TimeSpan Elapsed, string? Failure, IReadOnlyList<string> Log)
{
    /// <summary>The failure with the seed and the operation log, ready to print.</summary>
    public string Report(StressOptions o)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"stress {o.Design}: {(Clean ? "clean" : "FAILED")} after {Operations} operations in {Elapsed.TotalSeconds:F1} s (--threads {o.Threads} --seed {o.Seed})");
        if (Failure is not null)
        {
            sb.AppendLine(Failure);
            sb.AppendLine($"last {Log.Count} operations (seq thread op):");
            foreach (var l in Log)
                sb.AppendLine("  " + l);
        }
        return sb.ToString();
    }
}

/// <summary>A stress run as a user would drive the model: N threads over two processes, each thread
/// on regions of its own with contents it knows, doing random CPU reads and writes, dmirror READ,
/// WRITE, MIGRATE_TO_DEV, MIGRATE_TO_SYS on both device-private units, EXCLUSIVE/CHECK_EXCLUSIVE,
/// SNAPSHOT, mprotect, munmap+mmap, fork with a child that reads, migrates and exits, and RELEASE.
/// Every value read is checked against what the thread wrote; the DEBUG_VM checker and the teardown
/// leak check run at the end. Shared by `hmmsim stress` and the test suite.</summary>
internal sealed class StressEngine
{
    private const ulong PageSize = 4096;
    private const int RegionPages = 16;
    private const int LogPerThread = 64;
    private const Prot Rw = Prot.Read | Prot.Write;
    private const MapFlags PrivAnon = MapFlags.Private | MapFlags.Anonymous;

    private enum Op { CpuWrite, CpuRead, DevRead, DevWrite, MigrateToDev, MigrateToSys, Exclusive, Snapshot, Mprotect, Remap, Fork, Release }

    private static readonly Op[] _mix =
    [
        Op.CpuWrite, Op.CpuWrite, Op.CpuWrite, Op.CpuRead, Op.CpuRead, Op.CpuRead,
        Op.DevRead, Op.DevRead, Op.DevWrite, Op.DevWrite, Op.MigrateToDev, Op.MigrateToDev, Op.MigrateToDev,
        Op.MigrateToSys, Op.MigrateToSys, Op.Exclusive, Op.Snapshot, Op.Mprotect, Op.Remap, Op.Fork, Op.Release,
    ];

    private readonly StressOptions _o;
    private long _seq;
    private long _ops;
    private volatile bool _stop;
    private readonly ConcurrentQueue<string> _failures = new();
    private readonly string?[][] _logs;
    private readonly int[] _logNext;

    public StressEngine(StressOptions options)
    {
        if (options.Threads < 1)
            throw new ArgumentOutOfRangeException(nameof(options), "at least one thread");
        _o = options;
        _logs = new string?[options.Threads][];
        for (int i = 0; i < options.Threads; i++)
            _logs[i] = new string?[LogPerThread];
        _logNext = new int[options.Threads];
    }

    /// <summary>One thread's region: its address, whether it is read-only now, and the stamp each page holds.</summary>
    private sealed class Region
    {
        public ulong Addr;
        public bool ReadOnly;
        public readonly int[] Stamp = new int[RegionPages];
    }

    public StressResult Run()
    {
        var sw = Stopwatch.StartNew();
        var machine = new Machine(new MachineConfig { DevicePrivateDesign = _o.Design, CheckInvariants = false, RamBytes = 1UL << 30, Seed = _o.Seed });
        var procs = new[] { machine.CreateProcess(), machine.CreateProcess() };
        var threads = new Thread[_o.Threads];
        var deadline = DateTime.UtcNow + _o.Duration;
        for (int t = 0; t < _o.Threads; t++)
        {
            int id = t;
            threads[t] = new Thread(() => Worker(id, procs[id % 2], deadline)) { IsBackground = true, Name = $"stress-{id}" };
        }
        foreach (var th in threads)
            th.Start();
        var hang = _o.HangTimeout ?? TimeSpan.FromSeconds(120);
        foreach (var th in threads)
        {
            var left = deadline + hang - DateTime.UtcNow;
            if (!th.Join(left < TimeSpan.Zero ? TimeSpan.Zero : left))
            {
                _stop = true;
                _failures.Enqueue($"hang: {th.Name} has not finished {hang.TotalSeconds:F0} s after the deadline; its last operation is the last '{th.Name![7..]}' line of the log");
                return new StressResult(false, Interlocked.Read(ref _ops), sw.Elapsed, string.Join(Environment.NewLine, _failures), MergedLog());
            }
        }
        if (_failures.IsEmpty)
        {
            try
            {
                machine.CheckInvariants();
                foreach (var p in procs)
                    p.Dispose();
                machine.CheckTeardownAtDispose = true;
                machine.Dispose();
            }
            catch (Exception e)
            {
                _failures.Enqueue($"at the end: {e.GetType().Name}: {e.Message}");
            }
        }
        bool clean = _failures.IsEmpty;
        return new StressResult(clean, Interlocked.Read(ref _ops), sw.Elapsed, clean ? null : string.Join(Environment.NewLine, _failures), clean ? [] : MergedLog());
    }

    private List<string> MergedLog()
    {
        var all = new List<(long Seq, string Line)>();
        foreach (var log in _logs)
            foreach (var l in log)
                if (l is not null)
                    all.Add((long.Parse(l.AsSpan(0, l.IndexOf(' '))), l));
        all.Sort((a, b) => a.Seq.CompareTo(b.Seq));
        return all.ConvertAll(x => x.Line);
    }

    private void Log(int thread, string line)
    {
        long seq = Interlocked.Increment(ref _seq);
        _logs[thread][_logNext[thread]++ % LogPerThread] = $"{seq} t{thread} {line}";
    }

    private void Fail(int thread, string what)
    {
        _failures.Enqueue($"thread {thread}: {what}");
        _stop = true;
    }

    private static ulong MapRegion(Process p)
    {
        var err = p.Mmap(0, RegionPages * PageSize, Rw, PrivAnon, out ulong a);
        return err == Errno.None ? a : throw new InvalidOperationException($"stress: mmap failed with {err}");
    }

    private void Worker(int id, Process p, DateTime deadline)
    {
        var rng = new Random(unchecked((int)(_o.Seed * 7919 + (ulong)id * 104729)));
        var region = new Region { Addr = MapRegion(p) };
        var devs = new[] { p.OpenDmirror(0), p.OpenDmirror(1) };
        var buf = new byte[RegionPages * PageSize];
        int stamp = id << 24;
        try
        {
            while (!_stop && DateTime.UtcNow < deadline && (_o.MaxOperations == 0 || Interlocked.Increment(ref _ops) <= _o.MaxOperations))
            {
                if (_o.MaxOperations == 0 && (Interlocked.Increment(ref _ops) & 4095) == 0)
                {
                    _o.Tick?.Invoke(Interlocked.Read(ref _ops));
                    if (_o.StopRequested?.Invoke() == true)
                        break;
                }
                var op = _mix[rng.Next(_mix.Length)];
                int first = rng.Next(RegionPages);
                int n = 1 + rng.Next(RegionPages - first);
                // lib/test_hmm.c copies device-private memory through the CPU (an oops; EFAULT for a WRITE to
                // a read-only device page) when a READ or WRITE goes through the unit that holds a page whose
                // mirror entry was dropped. That is the driver's own bug, reachable on a real kernel; to keep
                // it out of the run, each thread migrates through one unit (mu) and mirrors through the
                // other, whose hmm_range_fault always faults the page back first. Both units are used: the
                // threads alternate.
                int mu = id % 2;
                var d = op is Op.MigrateToDev or Op.MigrateToSys ? devs[mu] : op is Op.DevRead or Op.DevWrite or Op.Exclusive ? devs[1 - mu] : devs[rng.Next(2)];
                ulong addr = region.Addr + (ulong)first * PageSize;
                Log(id, $"{op} unit{d.Unit} 0x{addr:x} +{n}{(region.ReadOnly ? " ro" : "")}");
                if (!Step(id, p, d, region, op, first, n, buf, ref stamp, rng))
                    return;
            }
            // The region holds what the thread last wrote.
            for (int i = 0; i < RegionPages; i++)
                if (!Expect(id, "final CPU read", region, i, p.ReadInt32(region.Addr + (ulong)i * PageSize)))
                    return;
        }
        catch (Exception e)
        {
            Fail(id, $"{e.GetType().Name}: {e.Message}{Environment.NewLine}{Frames(e)}");
        }
        finally
        {
            foreach (var d in devs)
            {
                try
                {
                    d.Dispose();
                }
                catch (Exception e)
                {
                    Fail(id, $"closing unit {d.Unit}: {e.GetType().Name}: {e.Message}");
                }
            }
        }
    }

    /// <summary>The first frames of the stack, which name the kernel function that failed.</summary>
    private static string Frames(Exception e)
    {
        var lines = (e.StackTrace ?? "").Split('\n');
        return string.Join('\n', lines.Take(12));
    }

    private bool Expect(int id, string what, Region r, int page, int seen)
    {
        if (seen == r.Stamp[page])
            return true;
        Fail(id, $"{what}: page {page} at 0x{r.Addr + (ulong)page * PageSize:x} holds {seen:x}, the thread wrote {r.Stamp[page]:x}");
        return false;
    }

    private bool ExpectMirror(int id, string what, Region r, int first, int n, byte[] buf)
    {
        for (int i = 0; i < n; i++)
            if (!Expect(id, what, r, first + i, BitConverter.ToInt32(buf, i * (int)PageSize)))
                return false;
        return true;
    }

    private bool ExpectErrno(int id, string what, Errno err, params Errno[] allowed)
    {
        if (err == Errno.None || Array.IndexOf(allowed, err) >= 0)
            return true;
        Fail(id, $"{what}: unexpected {err}");
        return false;
    }

    private bool Step(int id, Process p, Dmirror d, Region r, Op op, int first, int n, byte[] buf, ref int stamp, Random rng)
    {
        ulong addr = r.Addr + (ulong)first * PageSize;
        var span = buf.AsSpan(0, n * (int)PageSize);
        switch (op)
        {
            case Op.CpuWrite:
                if (r.ReadOnly)
                    return true;
                for (int i = 0; i < n; i++)
                {
                    p.WriteInt32(addr + (ulong)i * PageSize, ++stamp);
                    r.Stamp[first + i] = stamp;
                }
                return true;
            case Op.CpuRead:
                for (int i = 0; i < n; i++)
                    if (!Expect(id, "CPU read", r, first + i, p.ReadInt32(addr + (ulong)i * PageSize)))
                        return false;
                return true;
            case Op.DevRead:
                {
                    var res = d.Read(addr, (ulong)n, span);
                    // EBUSY: invalidations kept racing (HMM_RANGE_DEFAULT_TIMEOUT).
                    return ExpectErrno(id, "READ", res.Error, Errno.EBUSY) && (res.Error != Errno.None || ExpectMirror(id, "device READ", r, first, n, buf));
                }
            case Op.DevWrite:
                {
                    int s0 = stamp;
                    for (int i = 0; i < n; i++)
                        BitConverter.TryWriteBytes(span[(i * (int)PageSize)..], ++stamp);
                    // The rest of each page is zero in the model's view: the thread only tracks the first int,
                    // so it writes the whole page with its stamp in front and zeros behind it.
                    var res = d.Write(addr, (ulong)n, span);
                    if (r.ReadOnly)
                        return ExpectErrno(id, "WRITE of a read-only range", res.Error, Errno.EFAULT, Errno.EPERM);
                    if (!ExpectErrno(id, "WRITE", res.Error, Errno.EBUSY))
                        return false;
                    if (res.Error == Errno.None)
                    {
                        for (int i = 0; i < n; i++)
                            r.Stamp[first + i] = s0 + 1 + i;
                    }
                    return true;
                }
            case Op.MigrateToDev:
                {
                    // ENOENT: a page could not be migrated (a racing fault took it back, or it is shared or locked).
                    var res = d.MigrateToDevice(addr, (ulong)n, span);
                    return ExpectErrno(id, "MIGRATE_TO_DEV", res.Error, Errno.ENOENT, Errno.EBUSY) && (res.Error != Errno.None || ExpectMirror(id, "MIGRATE_TO_DEV read-back", r, first, n, buf));
                }
            case Op.MigrateToSys:
                return ExpectErrno(id, "MIGRATE_TO_SYS", d.MigrateToSystem(addr, (ulong)n).Error);
            case Op.Exclusive:
                {
                    if (r.ReadOnly)
                        return true;
                    // ENOENT: an invalidation (another thread's fork write-protecting the whole mm, or
                    // its munmap+mmap) dropped a mirror entry between make_device_exclusive and the
                    // read-back under the mutex; test_hmm's dmirror_exclusive has the same window.
                    var res = d.Exclusive(addr, (ulong)n, span);
                    if (!ExpectErrno(id, "EXCLUSIVE", res.Error, Errno.EBUSY, Errno.ENOENT) || res.Error == Errno.None && !ExpectMirror(id, "EXCLUSIVE read-back", r, first, n, buf))
                        return false;
                    // EPERM: the device still holds a page atomically; a CPU access since may have revoked it.
                    return ExpectErrno(id, "CHECK_EXCLUSIVE", d.CheckExclusive(addr, (ulong)n).Error, Errno.EPERM);
                }
            case Op.Snapshot:
                return ExpectErrno(id, "SNAPSHOT", d.Snapshot(addr, (ulong)n, span).Error);
            case Op.Mprotect:
                r.ReadOnly = !r.ReadOnly;
                return ExpectErrno(id, "mprotect", p.Mprotect(r.Addr, RegionPages * PageSize, r.ReadOnly ? Prot.Read : Rw));
            case Op.Remap:
                if (!ExpectErrno(id, "munmap", p.Munmap(r.Addr, RegionPages * PageSize)))
                    return false;
                r.Addr = MapRegion(p);
                r.ReadOnly = false;
                Array.Clear(r.Stamp);
                return true;
            case Op.Fork:
                return ForkChild(id, p, r, first, n, buf);
            case Op.Release:
                return ExpectErrno(id, "RELEASE", d.Release().Error);
            default:
                throw new UnreachableException();
        }
    }

    /// <summary>fork, then in the child: read the thread's pages, migrate some to a device and read them
    /// back, write some (COW), and exit; the parent's contents must be untouched.</summary>
    private bool ForkChild(int id, Process p, Region r, int first, int n, byte[] buf)
    {
        using var child = p.Fork();
        for (int i = 0; i < RegionPages; i++)
            if (!Expect(id, "child CPU read after fork", r, i, child.ReadInt32(r.Addr + (ulong)i * PageSize)))
                return false;
        ulong addr = r.Addr + (ulong)first * PageSize;
        using (var cd = child.OpenDmirror(id % 2))
        {
            var res = cd.MigrateToDevice(addr, (ulong)n, buf.AsSpan(0, n * (int)PageSize));
            if (!ExpectErrno(id, "child MIGRATE_TO_DEV", res.Error, Errno.ENOENT, Errno.EBUSY) || res.Error == Errno.None && !ExpectMirror(id, "child MIGRATE_TO_DEV read-back", r, first, n, buf))
                return false;
            if (!r.ReadOnly)
                child.WriteInt32(addr, -1);
        }
        return Expect(id, "parent CPU read after the child wrote", r, first, p.ReadInt32(addr));
    }
}
