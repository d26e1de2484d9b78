using System.Diagnostics;
using System.Runtime.CompilerServices;
using HmmSim.Kernel;

namespace HmmSim.Cli.Workloads;

/// <summary>The HMM workloads behind `hmmsim bench migrate` and `hmmsim bench fault`: the kernel's
/// benchmark_thp_migration (hmm-tests.c) and hmm_range_fault throughput. The checker is off.</summary>
public static class HmmWorkloads
{
    /// <summary>One size of benchmark_thp_migration: the median, fastest and slowest timed round each way.</summary>
    public sealed record MigrationRow(ulong Bytes, bool Thp, double SysToDevMs, double DevToSysMs)
    {
        public double SysToDevMinMs { get; init; } = SysToDevMs;
        public double SysToDevMaxMs { get; init; } = SysToDevMs;
        public double DevToSysMinMs { get; init; } = DevToSysMs;
        public double DevToSysMaxMs { get; init; } = DevToSysMs;
        /// <summary>The median memcpy of the same size, timed in the same rounds.</summary>
        public double MemcpyMs { get; init; } = double.NaN;
        /// <summary>memcpy time over migration time, round by round (median, min, max): the fraction of
        /// memcpy bandwidth reached, against a baseline measured beside it.</summary>
        public (double Median, double Min, double Max) SysToDevOfMemcpy { get; init; }
        public (double Median, double Min, double Max) DevToSysOfMemcpy { get; init; }
        /// <summary>Round by round, the time beyond the copies per 4 KiB page, in ns (median, min, max):
        /// sys→dev less two memcpys of the size (into the backing pages, back to the caller), dev→sys less one.</summary>
        public (double Median, double Min, double Max) SysToDevBookkeepingNsPerPage { get; init; }
        public (double Median, double Min, double Max) DevToSysBookkeepingNsPerPage { get; init; }
        public double SysToDevGBs => Bytes / (SysToDevMs / 1000) / 1e9;
        public double DevToSysGBs => Bytes / (DevToSysMs / 1000) / 1e9;
    }

    /// <summary>The sizes benchmark_thp_migration uses: a quarter THP up to 128 THPs.</summary>
    public static readonly ulong[] ThpMigrationSizes = [512UL << 10, 1UL << 20, 2UL << 20, 4UL << 20, 8UL << 20, 16UL << 20, 256UL << 20];

    /// <summary>benchmark_thp_migration: for each size, with MADV_HUGEPAGE and MADV_NOHUGEPAGE, one buffer
    /// mapped and filled once (as the C test does), then <paramref name="warmup"/> untimed and
    /// <paramref name="iterations"/> timed rounds of sys→dev and dev→sys on it. Tiered JIT settles in the
    /// warm-up rounds (at least 30 calls of every method on the path), and a full collection runs before each
    /// timed window so no GC of earlier rounds lands inside it. The caller's buffer is allocated once per size.</summary>
    public static List<MigrationRow> ThpMigration(DevicePrivateDesign design, int iterations = 5, IReadOnlyList<ulong>? sizes = null, int warmup = -1)
    {
        var rows = new List<MigrationRow>();
        using var m = new Machine(new MachineConfig { CheckInvariants = false, DevicePrivateDesign = design, HugetlbPages = 0 });
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        var toDev = new double[iterations];
        var toSys = new double[iterations];
        var copy = new double[iterations];
        var rDev = new double[iterations];
        var rSys = new double[iterations];
        var bDev = new double[iterations];
        var bSys = new double[iterations];
        if (warmup < 0)
        {
            // Every method on both paths (THP and small pages) to optimized code before the first row.
            var first = new byte[2UL << 20];
            foreach (bool thp in new[] { true, false })
            {
                ulong raw = MapAligned(p, (ulong)first.Length, thp, first, out ulong addr);
                WarmUp(p, dev, addr, (ulong)first.Length, first, 3 * WarmUpMs);
                Check(p.Munmap(raw, (ulong)first.Length + (2UL << 20)));
            }
        }
        // Ctrl-C: no new size starts; the rows measured so far are the partial table.
        foreach (ulong size in (sizes ?? ThpMigrationSizes).TakeWhile(_ => !Interrupt.Requested))
        {
            // Enough untimed rounds for tier-1 code on small sizes; a few for the large ones.
            int warm = warmup >= 0 ? warmup : size <= 16UL << 20 ? 40 : 3;
            var buf = GC.AllocateUninitializedArray<byte>(checked((int)size));
            var copyDst = new byte[size];
            foreach (bool thp in new[] { true, false })
            {
                ulong raw = MapAligned(p, size, thp, buf, out ulong addr);
                if (warmup < 0)
                    WarmUp(p, dev, addr, size, buf);
                for (int it = -warm; it < iterations; it++)
                {
                    var (a, b) = OneRound(p, dev, addr, size, buf, collect: it >= 0);
                    double c = MemcpyMs(buf, copyDst);
                    if (it >= 0)
                    {
                        toDev[it] = a;
                        toSys[it] = b;
                        copy[it] = c;
                        rDev[it] = c / a;
                        rSys[it] = c / b;
                        double nsPerPage = 1e6 / (size >> Arch.PageShift);
                        bDev[it] = (a - 2 * c) * nsPerPage;
                        bSys[it] = (b - c) * nsPerPage;
                    }
                }
                Check(p.Munmap(raw, size + (2UL << 20)));
                var (dMed, dMin, dMax) = Spread(toDev);
                var (sMed, sMin, sMax) = Spread(toSys);
                rows.Add(new MigrationRow(size, thp, dMed, sMed)
                {
                    SysToDevMinMs = dMin,
                    SysToDevMaxMs = dMax,
                    DevToSysMinMs = sMin,
                    DevToSysMaxMs = sMax,
                    MemcpyMs = Spread(copy).Median,
                    SysToDevOfMemcpy = Spread(rDev),
                    DevToSysOfMemcpy = Spread(rSys),
                    SysToDevBookkeepingNsPerPage = Spread(bDev),
                    DevToSysBookkeepingNsPerPage = Spread(bSys),
                });
            }
        }
        return rows;
    }

    /// <summary>Untimed rounds until the JIT has settled (<see cref="WarmUntilJitSettles"/>): at least
    /// <paramref name="ms"/>, at most 2.5 times that (the first warm-up of a run settles the shared path;
    /// a row's own only tops it up).</summary>
    private static void WarmUp(Process p, Dmirror dev, ulong addr, ulong size, byte[] buf, double ms = WarmUpMs) =>
        WarmUntilJitSettles(() => OneRound(p, dev, addr, size, buf, collect: false), ms, maxMs: 2.5 * ms);

    private const double WarmUpMs = 400;

    /// <summary>Runs <paramref name="round"/> untimed for at least <paramref name="minMs"/>, then until no
    /// method has been compiled for <paramref name="quietMs"/>, at most <paramref name="maxMs"/> in all.
    /// Tiered compilation promotes a method to optimized code only after 30 calls and 100 ms without new
    /// tier-0 code, then compiles it in the background, so a fixed count of fast rounds, or a fixed time,
    /// can end first: `bench checks` timed tier-0 code in about half its runs from the CLI (0.6–0.9 µs an
    /// access against 0.3), where the command's own start-up and the progress line kept the JIT busy.</summary>
    internal static void WarmUntilJitSettles(Action round, double minMs, double quietMs = 300, double maxMs = 5000)
    {
        long t0 = Stopwatch.GetTimestamp(), lastChange = t0;
        long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        while (!Interrupt.Requested)
        {
            round();
            long now = Stopwatch.GetTimestamp(), count = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (count != compiled)
            {
                compiled = count;
                lastChange = now;
            }
            double elapsed = Stopwatch.GetElapsedTime(t0, now).TotalMilliseconds;
            if (elapsed >= maxMs || elapsed >= minMs && Stopwatch.GetElapsedTime(lastChange, now).TotalMilliseconds >= quietMs)
                return;
        }
    }

    /// <summary>Median, minimum and maximum of a few samples.</summary>
    public static (double Median, double Min, double Max) Spread(double[] samples)
    {
        var sorted = (double[])samples.Clone();
        Array.Sort(sorted);
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        return (median, sorted[0], sorted[^1]);
    }

    /// <summary>A PMD-aligned anonymous buffer of <paramref name="size"/> bytes, advised for or against THP
    /// and filled from <paramref name="pattern"/>; returns the raw mapping to unmap (size + 2 MiB).</summary>
    private static ulong MapAligned(Process p, ulong size, bool thp, byte[] pattern, out ulong addr)
    {
        ulong pmd = 2UL << 20;
        Check(p.Mmap(0, size + pmd, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw));
        addr = (raw + pmd - 1) & ~(pmd - 1);
        Check(p.Madvise(addr, size, thp ? Advice.HugePage : Advice.NoHugePage));
        pattern.AsSpan().Clear();
        for (int i = 0; i < pattern.Length; i += (int)Arch.PageSize)
            pattern[i] = (byte)(i >> Arch.PageShift);
        p.Write(addr, pattern);
        return raw;
    }

    private static (double ToDevMs, double ToSysMs) OneRound(Process p, Dmirror dev, ulong addr, ulong size, byte[] buf, bool collect)
    {
        ulong npages = size >> Arch.PageShift;
        if (collect)
            GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        long t0 = Stopwatch.GetTimestamp();
        var r = dev.MigrateToDevice(addr, npages, buf);
        double toDev = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        if (r.Error != Errno.None || r.CPages != npages || buf[4096] != 1)
            throw new InvalidOperationException($"migrate to device failed: {r}");
        if (collect)
            GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        t0 = Stopwatch.GetTimestamp();
        r = dev.MigrateToSystem(addr, npages);
        double toSys = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        // cpages counts migrated source entries: a device THP is one (compound) entry, as in the kernel.
        if (r.Error != Errno.None || p.PagemapEntry(addr) >> 63 == 0 || p.PagemapEntry(addr + size - Arch.PageSize) >> 63 == 0)
            throw new InvalidOperationException($"migrate to system failed: {r}");
        return (toDev, toSys);
    }

    /// <summary>One memcpy of <paramref name="src"/> into <paramref name="dst"/> (both warm), in ms.</summary>
    private static double MemcpyMs(byte[] src, byte[] dst)
    {
        long t0 = Stopwatch.GetTimestamp();
        src.AsSpan().CopyTo(dst);
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    /// <summary>This machine's memcpy bandwidth (GB/s) over <paramref name="bytes"/>: the median of
    /// <paramref name="rounds"/> copies between two warmed buffers.</summary>
    public static double MemcpyGBs(int bytes = 256 << 20, int rounds = 7)
    {
        var src = GC.AllocateUninitializedArray<byte>(bytes);
        var dst = GC.AllocateUninitializedArray<byte>(bytes);
        src.AsSpan().Fill(1);
        dst.AsSpan().Clear();
        var t = new double[rounds];
        for (int i = 0; i < rounds; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            src.AsSpan().CopyTo(dst);
            t[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        return bytes / Spread(t).Median / 1e9;
    }

    /// <summary>One line of `hmmsim bench soak`: after round <paramref name="Round"/>, the process's peak and
    /// current resident set (VmHWM, VmRSS) and the managed heap, after an aggressive full collection.</summary>
    public sealed record SoakSample(int Round, long PeakRssBytes, long RssBytes, long ManagedBytes);

    /// <summary>Memory that stays flat: <paramref name="rounds"/> rounds of {mmap <paramref name="bytes"/>, fill,
    /// migrate to the device and back, munmap} on one machine, then <paramref name="machines"/> machines each
    /// created, used the same way once, and disposed. Samples after the first and last round and machine.</summary>
    public static (List<SoakSample> Rounds, List<SoakSample> Machines) Soak(DevicePrivateDesign design, int rounds, int machines, ulong bytes)
    {
        var fill = GC.AllocateUninitializedArray<byte>(checked((int)bytes));
        var mirror = GC.AllocateUninitializedArray<byte>((int)bytes);
        for (int i = 0; i < fill.Length; i += 4096)
            fill.AsSpan(i, 4096).Fill((byte)(i >> 12 | 1));
        var roundSamples = new List<SoakSample>();
        using (var m = new Machine(new MachineConfig { CheckInvariants = false, DevicePrivateDesign = design, RamBytes = 4UL << 30, HugetlbPages = 0 }))
        {
            var p = m.CreateProcess();
            using var dev = p.OpenDmirror(0);
            // Ctrl-C ends the rounds (and skips the machines) after the round in progress, sampled.
            for (int r = 1; r <= rounds && !Interrupt.Requested; r++)
            {
                SoakRound(p, dev, fill, mirror);
                if (r == 1 || r == rounds || r % 50 == 0 || Interrupt.Requested)
                    roundSamples.Add(Sample(r));
            }
        }
        var machineSamples = new List<SoakSample>();
        for (int i = 1; i <= machines && !Interrupt.Requested; i++)
        {
            using (var m = new Machine(new MachineConfig { CheckInvariants = false, DevicePrivateDesign = design, RamBytes = 4UL << 30, HugetlbPages = 0 }))
            {
                var p = m.CreateProcess();
                using var dev = p.OpenDmirror(0);
                SoakRound(p, dev, fill, mirror);
            }
            if (i == 1 || i == machines || i % 10 == 0 || Interrupt.Requested)
                machineSamples.Add(Sample(i));
        }
        return (roundSamples, machineSamples);
    }

    private static void SoakRound(Process p, Dmirror dev, byte[] fill, byte[] mirror)
    {
        ulong size = (ulong)fill.Length;
        Check(p.Mmap(0, size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong addr));
        p.Write(addr, fill);
        var r = dev.MigrateToDevice(addr, size >> 12, mirror);
        if (r.Error != Errno.None || mirror[4096] != fill[4096])
            throw new InvalidOperationException($"migrate to device failed: {r}");
        r = dev.MigrateToSystem(addr, size >> 12);
        if (r.Error != Errno.None)
            throw new InvalidOperationException($"migrate to system failed: {r}");
        Check(p.Munmap(addr, size));
    }

    internal static SoakSample Sample(int round, bool collect = true)
    {
        // An aggressive collection also hands the freed segments back to the OS, so RSS shows what the
        // model still holds rather than what the GC keeps committed for reuse. A caller that only wants
        // the peak (VmHWM) skips it: compacting a heap of several GiB takes seconds.
        if (collect)
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        long managed = GC.GetTotalMemory(forceFullCollection: false);
        long hwm = 0, rss = 0;
        if (File.Exists("/proc/self/status"))
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    hwm = StatusKib(line) << 10;
                else if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    rss = StatusKib(line) << 10;
            }
        }
        else
        {
            using var self = System.Diagnostics.Process.GetCurrentProcess();
            hwm = self.PeakWorkingSet64;
            rss = self.WorkingSet64;
        }
        return new SoakSample(round, hwm, rss, managed);
    }

    private static long StatusKib(string line) =>
        long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>One round of <see cref="SnapshotThroughput"/>, in pages/s: the SNAPSHOT ioctl, one
    /// hmm_range_fault call, and a raw sequential read of the same PTE words timed just before the call.</summary>
    public readonly record struct SnapshotRound(double IoctlPagesPerSec, double RangeFaultPagesPerSec, double RawScanPagesPerSec)
    {
        /// <summary>hmm_range_fault's rate over the raw scan's: the fraction of a bare read of the PTE words reached.</summary>
        public double RangeFaultOfRawScan => RangeFaultPagesPerSec / RawScanPagesPerSec;
    }

    /// <summary>hmm_range_fault throughput: SNAPSHOT (no faulting) over a populated range, in pages/s,
    /// through the ioctl (32-page windows, a notifier each) and through one hmm_range_fault call, beside
    /// a raw scan of the PTE words the call reads (its floor). Before the timed scan and call, one untimed
    /// scan brings the tables into the cache, so both timed reads start from the same cache state, and
    /// the caller's pfn array is written once, as a driver's reused array would be.</summary>
    public static SnapshotRound SnapshotThroughput(DevicePrivateDesign design, ulong bytes = 1UL << 30)
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false, DevicePrivateDesign = design, HugetlbPages = 0 });
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        Check(p.Mmap(0, bytes, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong addr));
        for (ulong off = 0; off < bytes; off += Arch.PageSize)
            p.WriteInt32(addr + off, 1);
        ulong npages = bytes >> Arch.PageShift;
        var prot = new byte[npages];
        var sw = Stopwatch.StartNew();
        var r = dev.Snapshot(addr, npages, prot);
        sw.Stop();
        if (r.Error != Errno.None || prot[0] != (byte)DmirrorProt.Write)
            throw new InvalidOperationException($"snapshot failed: {r}");
        double ioctl = npages / sw.Elapsed.TotalSeconds;

        var mm = p.Mm;
        var notifier = MmuNotifier.MmuIntervalNotifierInsert(mm, addr, bytes, (_, _, _) => true);
        var range = new HmmRange { Notifier = notifier, HmmPfns = new ulong[npages], Start = addr, End = addr + bytes };
        Array.Fill(range.HmmPfns, 0UL);
        Mm.MmapReadLock(mm);
        ulong warm = RawPteScan(mm, addr, addr + bytes, out _);
        sw.Restart();
        ulong or = RawPteScan(mm, addr, addr + bytes, out ulong scanned);
        sw.Stop();
        Mm.MmapReadUnlock(mm);
        if (or == 0 || or != warm || scanned != npages)
            throw new InvalidOperationException($"raw PTE scan read {scanned} of {npages} entries");
        double raw = npages / sw.Elapsed.TotalSeconds;

        sw.Restart();
        range.NotifierSeq = MmuNotifier.MmuIntervalReadBegin(notifier);
        Mm.MmapReadLock(mm);
        var err = RangeFault.HmmRangeFault(mm, range);
        Mm.MmapReadUnlock(mm);
        sw.Stop();
        MmuNotifier.MmuIntervalNotifierRemove(notifier);
        if (err != HmmSim.Kernel.Errno.None || (range.HmmPfns[^1] & HmmPfn.Valid) == 0)
            throw new InvalidOperationException($"hmm_range_fault failed: {err}");
        return new SnapshotRound(ioctl, npages / sw.Elapsed.TotalSeconds, raw);
    }

    /// <summary>The raw scan beside hmm_range_fault: the PTE tables behind the PMDs of [start, end), each
    /// found once from the top, and every word read in order and ORed together.
    /// Returns the OR; <paramref name="entries"/> is how many words were read. Only PTE tables are read:
    /// the benchmark's range is populated with 4 KiB pages.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ulong RawPteScan(MmStruct mm, ulong start, ulong end, out ulong entries)
    {
        ulong or = 0;
        entries = 0;
        for (ulong a = start; a < end;)
        {
            ulong next = Math.Min((a + Arch.PmdSize) & ~(Arch.PmdSize - 1), end);
            if (mm.WalkToPte(a, out var table))
            {
                var words = mm.Table(table).Slice(MmStruct.PteIndex(a), (int)((next - a) >> Arch.PageShift));
                foreach (ulong w in words)
                    or |= w;
                entries += (ulong)words.Length;
            }
            a = next;
        }
        return or;
    }

    private static void Check(Errno e)
    {
        if (e != Errno.None)
            throw new ErrnoException(e);
    }
}
