using System.Diagnostics;

namespace HmmSim.Cli.Workloads;

/// <summary>`hmmsim bench checks`: what the DEBUG_VM checker costs per CPU access on a large, sparsely
/// touched machine, checks on against checks off in the same run, and the full walk (warm, median of five) beside them.</summary>
public static class ChecksWorkload
{
    public sealed record Result(ulong RamBytes, ulong MappingBytes, int PagesTouched, int Accesses,
        (double Median, double Min, double Max) OffUs, (double Median, double Min, double Max) OnUs, double OnOverOffMedian, double FullWalkMs);

    public static Result Run(ulong ramBytes = 1UL << 40, ulong mappingBytes = 512UL << 30, int pagesTouched = 4096, int accesses = 2000, int rounds = 7)
    {
        var off = new double[rounds];
        var on = new double[rounds];
        using var mOff = Build(false, ramBytes, mappingBytes, pagesTouched, out var pOff, out ulong aOff);
        using var mOn = Build(true, ramBytes, mappingBytes, pagesTouched, out var pOn, out ulong aOn);
        ulong stride = mappingBytes / (ulong)pagesTouched;
        // Untimed until both paths run optimized code (a few rounds end before tiered compilation promotes
        // anything).
        HmmWorkloads.WarmUntilJitSettles(() =>
        {
            PerAccessUs(pOff, aOff, stride, pagesTouched, accesses);
            PerAccessUs(pOn, aOn, stride, pagesTouched, accesses);
        }, minMs: 600);
        for (int r = 0; r < rounds; r++)
        {
            // Interleaved, so both see the same load on this shared machine.
            off[r] = PerAccessUs(pOff, aOff, stride, pagesTouched, accesses);
            on[r] = PerAccessUs(pOn, aOn, stride, pagesTouched, accesses);
        }
        // The full walk warmed the same way (a walk timed once, cold, times tier-0 code), then the median of five.
        HmmWorkloads.WarmUntilJitSettles(mOn.CheckInvariants, minMs: 200);
        var walks = new double[5];
        for (int i = 0; i < walks.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            mOn.CheckInvariants();
            walks[i] = sw.Elapsed.TotalMilliseconds;
        }
        var ratios = new double[rounds];
        for (int r = 0; r < rounds; r++)
            ratios[r] = on[r] / off[r];
        return new Result(ramBytes, mappingBytes, pagesTouched, accesses, HmmWorkloads.Spread(off), HmmWorkloads.Spread(on), HmmWorkloads.Spread(ratios).Median, HmmWorkloads.Spread(walks).Median);
    }

    private static Machine Build(bool check, ulong ram, ulong bytes, int touched, out Process p, out ulong a)
    {
        var m = new Machine(new MachineConfig { CheckInvariants = check, RamBytes = ram, HugetlbPages = 0 });
        p = m.CreateProcess();
        if (p.Mmap(0, bytes, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out a) != Errno.None)
            throw new InvalidOperationException("mmap of the sparse mapping failed");
        ulong stride = bytes / (ulong)touched;
        for (int i = 0; i < touched; i++)
            p.WriteInt32(a + (ulong)i * stride, i + 1);
        return m;
    }

    private static double PerAccessUs(Process p, ulong a, ulong stride, int touched, int accesses)
    {
        int sum = 0;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < accesses; i++)
            sum += p.ReadInt32(a + (ulong)(i % touched) * stride);
        sw.Stop();
        if (sum == 0)
            throw new InvalidOperationException("the touched pages read back as zeros");
        return sw.Elapsed.TotalMilliseconds * 1000 / accesses;
    }
}
