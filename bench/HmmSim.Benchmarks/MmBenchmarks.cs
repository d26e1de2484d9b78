using BenchmarkDotNet.Attributes;
using HmmSim.Cli.Workloads;

namespace HmmSim.Benchmarks;

/// <summary>Issue 2's mm-core figures. Allocations are the number to watch on a noisy 2-core machine.</summary>
[MemoryDiagnoser]
[SimpleJob(warmupCount: 1, iterationCount: 5)]
public class MmBenchmarks
{
    private const ulong Size = 256 * MmWorkloads.Mib;
    private Machine _machine = null!;
    private Process _process = null!;
    private ulong _addr;

    [IterationSetup(Targets = [nameof(AnonWriteFaults4K), nameof(AnonWriteFaultsThp)])]
    public void FreshProcess()
    {
        _machine = MmWorkloads.NewMachine();
        _process = _machine.CreateProcess();
    }

    [IterationSetup(Targets = [nameof(ForkPopulated), nameof(PageTableWalk)])]
    public void PopulatedProcess()
    {
        FreshProcess();
        _addr = MmWorkloads.PopulateAnon(_process, Size, thp: false);
    }

    [IterationCleanup]
    public void Cleanup() => _machine.Dispose();

    [Benchmark(Description = "65536 anon write faults, 4 KiB")]
    public ulong AnonWriteFaults4K() => MmWorkloads.PopulateAnon(_process, Size, thp: false);

    [Benchmark(Description = "128 anon write faults, THP")]
    public ulong AnonWriteFaultsThp()
    {
        _process.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a);
        _process.Madvise(a, Size, Advice.HugePage);
        for (ulong off = 0; off < Size; off += 2 * MmWorkloads.Mib)
            _process.WriteInt32(a + off, 1);
        return a;
    }

    [Benchmark(Description = "fork of a 256 MiB populated mm")]
    public Process ForkPopulated() => _process.Fork();

    [Benchmark(Description = "pagemap walk over 256 MiB of 4 KiB mappings")]
    public ulong PageTableWalk() => MmWorkloads.WalkPagemap(_process, _addr, Size);
}
