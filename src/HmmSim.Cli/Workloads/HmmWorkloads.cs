using System.Diagnostics;
using HmmSim.Kernel;

namespace HmmSim.Cli.Workloads;

/// <summary>The HMM workloads behind `hmmsim bench migrate` and `hmmsim bench fault`: the kernel's
/// benchmark_thp_migration (hmm-tests.c) and hmm_range_fault throughput. The checker is off.</summary>
public static class HmmWorkloads
{
    public sealed record MigrationRow(ulong Bytes, bool Thp, double SysToDevMs, double DevToSysMs)
    {
        public double SysToDevGBs => Bytes / (SysToDevMs / 1000) / 1e9;
        public double DevToSysGBs => Bytes / (DevToSysMs / 1000) / 1e9;
    }

    /// <summary>The sizes benchmark_thp_migration uses: a quarter THP up to 128 THPs.</summary>
    public static readonly ulong[] ThpMigrationSizes = [512UL << 10, 1UL << 20, 2UL << 20, 4UL << 20, 8UL << 20, 16UL << 20, 256UL << 20];

    /// <summary>benchmark_thp_migration: for each size, with MADV_HUGEPAGE and MADV_NOHUGEPAGE, the mean of
    /// <paramref name="iterations"/> timed sys→dev and dev→sys migrations after one warm-up.</summary>
    public static List<MigrationRow> ThpMigration(DevicePrivateDesign design, int iterations = 5, IReadOnlyList<ulong>? sizes = null)
    {
        var rows = new List<MigrationRow>();
        using var m = new Machine(new MachineConfig { CheckInvariants = false, DevicePrivateDesign = design, HugetlbPages = 0 });
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        foreach (ulong size in sizes ?? ThpMigrationSizes)
        {
            foreach (bool thp in new[] { true, false })
            {
                double toDev = 0, toSys = 0;
                for (int it = -1; it < iterations; it++)
                {
                    var (a, b) = OneRound(p, dev, size, thp);
                    if (it >= 0)
                    {
                        toDev += a;
                        toSys += b;
                    }
                }
                rows.Add(new MigrationRow(size, thp, toDev / iterations, toSys / iterations));
            }
        }
        return rows;
    }

    private static (double ToDevMs, double ToSysMs) OneRound(Process p, Dmirror dev, ulong size, bool thp)
    {
        ulong pmd = 2UL << 20;
        ulong len = size + pmd;
        Check(p.Mmap(0, len, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw));
        ulong addr = (raw + pmd - 1) & ~(pmd - 1);
        Check(p.Madvise(addr, size, thp ? Advice.HugePage : Advice.NoHugePage));
        var buf = new byte[size];
        for (int i = 0; i < buf.Length; i += (int)Arch.PageSize)
            buf[i] = (byte)(i >> Arch.PageShift);
        p.Write(addr, buf);
        ulong npages = size >> Arch.PageShift;
        var sw = Stopwatch.StartNew();
        var r = dev.MigrateToDevice(addr, npages, buf);
        sw.Stop();
        if (r.Error != Errno.None || r.CPages != npages)
            throw new InvalidOperationException($"migrate to device failed: {r}");
        double toDev = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        r = dev.MigrateToSystem(addr, npages);
        sw.Stop();
        // cpages counts migrated source entries: a device THP is one (compound) entry, as in the kernel.
        if (r.Error != Errno.None || p.PagemapEntry(addr) >> 63 == 0 || p.PagemapEntry(addr + size - Arch.PageSize) >> 63 == 0)
            throw new InvalidOperationException($"migrate to system failed: {r}");
        double toSys = sw.Elapsed.TotalMilliseconds;
        Check(p.Munmap(raw, len));
        return (toDev, toSys);
    }

    /// <summary>This machine's memcpy bandwidth (GB/s) over <paramref name="bytes"/>, best of a few copies.</summary>
    public static double MemcpyGBs(int bytes = 256 << 20)
    {
        var src = GC.AllocateUninitializedArray<byte>(bytes);
        var dst = GC.AllocateUninitializedArray<byte>(bytes);
        src.AsSpan().Fill(1);
        dst.AsSpan().Clear();
        double best = double.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            src.AsSpan().CopyTo(dst);
            sw.Stop();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return bytes / best / 1e9;
    }

    /// <summary>hmm_range_fault throughput: SNAPSHOT (no faulting) over a populated range, in pages/s,
    /// through the ioctl (32-page windows, a notifier each) and through one hmm_range_fault call.</summary>
    public static (double IoctlPagesPerSec, double RangeFaultPagesPerSec) SnapshotThroughput(DevicePrivateDesign design, ulong bytes = 1UL << 30)
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
        sw.Restart();
        range.NotifierSeq = MmuNotifier.MmuIntervalReadBegin(notifier);
        Mm.MmapReadLock(mm);
        var err = RangeFault.HmmRangeFault(mm, range);
        Mm.MmapReadUnlock(mm);
        sw.Stop();
        MmuNotifier.MmuIntervalNotifierRemove(notifier);
        if (err != HmmSim.Kernel.Errno.None || (range.HmmPfns[^1] & HmmPfn.Valid) == 0)
            throw new InvalidOperationException($"hmm_range_fault failed: {err}");
        return (ioctl, npages / sw.Elapsed.TotalSeconds);
    }

    private static void Check(Errno e)
    {
        if (e != Errno.None)
            throw new ErrnoException(e);
    }
}
