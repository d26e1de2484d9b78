using BenchmarkDotNet.Attributes;

namespace HmmSim.Benchmarks;

/// <summary>migrate_vma through the dmirror ioctls: N pages to the device (data returned in the caller's
/// buffer) and back, on one buffer mapped once. The Allocated column is the figure to watch: divided by
/// the pages migrated per operation it must be 0 bytes a page in steady state (docs/performance.md).</summary>
[MemoryDiagnoser]
[SimpleJob(warmupCount: 3, iterationCount: 5)]
public class MigrateBenchmarks
{
    private Machine _machine = null!;
    private Process _process = null!;
    private Dmirror _dev = null!;
    private ulong _addr;
    private byte[] _mirror = null!;

    /// <summary>Pages migrated each way per operation.</summary>
    [Params(512, 16384)]
    public int Pages { get; set; }

    [Params(true, false)]
    public bool Thp { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _machine = new Machine(new MachineConfig { CheckInvariants = false, RamBytes = 4UL << 30, HugetlbPages = 0 });
        _process = _machine.CreateProcess();
        _dev = _process.OpenDmirror(0);
        ulong size = (ulong)Pages * 4096, pmd = 2UL << 20;
        _process.Mmap(0, size + pmd, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw);
        _addr = (raw + pmd - 1) & ~(pmd - 1);
        _process.Madvise(_addr, size, Thp ? Advice.HugePage : Advice.NoHugePage);
        _mirror = new byte[size];
        for (int i = 0; i < _mirror.Length; i += 4096)
            _mirror[i] = (byte)(i >> 12 | 1);
        _process.Write(_addr, _mirror);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _dev.Dispose();
        _machine.Dispose();
    }

    [Benchmark(Description = "migrate N pages to the device and back")]
    public ulong MigrateToDeviceAndBack()
    {
        var r = _dev.MigrateToDevice(_addr, (ulong)Pages, _mirror);
        if (r.Error != Errno.None || r.CPages != (ulong)Pages)
            throw new InvalidOperationException($"MIGRATE_TO_DEV: {r}");
        var s = _dev.MigrateToSystem(_addr, (ulong)Pages);
        if (s.Error != Errno.None)
            throw new InvalidOperationException($"MIGRATE_TO_SYS: {s}");
        return r.CPages + s.CPages;
    }
}
