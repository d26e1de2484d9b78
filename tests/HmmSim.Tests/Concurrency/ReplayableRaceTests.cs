using System.Text;

namespace HmmSim.Tests.Concurrency;

/// <summary>The kernel's own races as interleavings that replay exactly (DeterministicScheduler): the
/// threads take turns at the model's sleeping-lock points, a seed picks the turns, and the recorded
/// choices replay the same interleaving, with the same trace and the same outcome, every time. Each
/// outcome is one the kernel guarantees.</summary>
public class ReplayableRaceTests
{
    private const ulong PageSize = 4096;
    private const int Pages = 16;
    private static readonly TimeSpan _timeout = TimeSpan.FromSeconds(60);

    private static ulong MapAndFill(Process p)
    {
        Assert.Equal(Errno.None, p.Mmap(0, Pages * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        for (int i = 0; i < Pages; i++)
            p.WriteInt32(a + (ulong)i * PageSize, 1000 + i);
        return a;
    }

    private static string DataOutcome(DmirrorResult r, byte[] mirror, int pages)
    {
        if (r.Error != Errno.None)
            return r.Error.ToString();
        for (int i = 0; i < pages; i++)
            Assert.Equal(1000 + i, BitConverter.ToInt32(mirror, i * (int)PageSize));
        return "data";
    }

    /// <summary>Runs the two bodies under the scheduler; neither may throw.</summary>
    private static void RunBoth(DeterministicScheduler s, Action first, Action second) =>
        Assert.All(s.Run(_timeout, first, second), Assert.Null);

    /// <summary>After a race: the CPU reads every page's data and the checker is clean.</summary>
    private static void AssertDataKept(Machine m, Process p, ulong a)
    {
        for (int i = 0; i < Pages; i++)
            Assert.Equal(1000 + i, p.ReadInt32(a + (ulong)i * PageSize));
        m.CheckInvariants();
    }

    /// <summary>hmm-tests.c anon_teardown: a device READ of the buffer racing munmap of its upper half.
    /// The kernel guarantees the READ returns every page's data or fails with EFAULT (it saw the
    /// invalidation and refaulted an unmapped range), never stale data; the lower half stays.</summary>
    private static string AnonTeardown(DevicePrivateDesign design, DeterministicScheduler s)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        ulong a = MapAndFill(p);
        var mirror = new byte[Pages * PageSize];
        DmirrorResult r = default;
        var errors = s.Run(_timeout,
            () => r = d.Read(a, Pages, mirror),
            () => Assert.Equal(Errno.None, p.Munmap(a + Pages / 2 * PageSize, Pages / 2 * PageSize)));
        Assert.All(errors, Assert.Null);
        for (int i = 0; i < Pages / 2; i++)
            Assert.Equal(1000 + i, p.ReadInt32(a + (ulong)i * PageSize));
        m.CheckInvariants();
        return DataOutcome(r, mirror, Pages);
    }

    /// <summary>MIGRATE_TO_DEV racing fork: whatever the order, parent and child read the data written
    /// before the fork (the child's copy of a migration entry is resolved by remove_migration_ptes'
    /// rmap walk, which finds the child's VMA through the anon_vma), and the checker is clean.</summary>
    private static string MigrationRacingFork(DevicePrivateDesign design, DeterministicScheduler s)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        ulong a = MapAndFill(p);
        var mirror = new byte[Pages * PageSize];
        DmirrorResult r = default;
        Process? child = null;
        var errors = s.Run(_timeout,
            () => r = d.MigrateToDevice(a, Pages, mirror),
            () => child = p.Fork());
        Assert.All(errors, Assert.Null);
        Assert.True(r.Error is Errno.None or Errno.ENOENT, $"MIGRATE_TO_DEV: {r.Error}");
        using (child)
        {
            for (int i = 0; i < Pages; i++)
            {
                Assert.Equal(1000 + i, child!.ReadInt32(a + (ulong)i * PageSize));
                Assert.Equal(1000 + i, p.ReadInt32(a + (ulong)i * PageSize));
            }
            m.CheckInvariants();
        }
        return r.Error == Errno.None ? DataOutcome(r, mirror, Pages) : r.Error.ToString();
    }

    /// <summary>A device fault (READ through the child's dmirror) racing the child's exit: the READ gets
    /// the data or EFAULT (mmget_not_zero fails once the mm is gone), nothing hangs or leaks, and the
    /// parent keeps its data.</summary>
    private static string ExitRacingDeviceFault(DevicePrivateDesign design, DeterministicScheduler s)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var p = m.CreateProcess();
        ulong a = MapAndFill(p);
        var child = p.Fork();
        using var cd = child.OpenDmirror(1);
        var mirror = new byte[Pages * PageSize];
        DmirrorResult r = default;
        RunBoth(s, () => r = cd.Read(a, Pages, mirror), () => child.Dispose());
        AssertDataKept(m, p, a);
        return DataOutcome(r, mirror, Pages);
    }

    /// <summary>MIGRATE_TO_DEV racing the close of another handle on the same device, which evicts every
    /// chunk (migrate_device_range): the eviction may take device pages the migration is still filling
    /// or has just mapped. MIGRATE_TO_DEV returns the data or ENOENT (a page evicted before the read-back
    /// left the mirror), the CPU reads every page's data afterwards, and the checker is clean.</summary>
    private static string MigrationRacingClose(DevicePrivateDesign design, DeterministicScheduler s)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var p = m.CreateProcess();
        using var d = p.OpenDmirror(0);
        var other = p.OpenDmirror(0);
        ulong a = MapAndFill(p);
        var mirror = new byte[Pages * PageSize];
        DmirrorResult r = default;
        RunBoth(s, () => r = d.MigrateToDevice(a, Pages, mirror), () => other.Dispose());
        Assert.True(r.Error is Errno.None or Errno.ENOENT, $"MIGRATE_TO_DEV: {r.Error}");
        AssertDataKept(m, p, a);
        return r.Error == Errno.None ? DataOutcome(r, mirror, Pages) : r.Error.ToString();
    }

    public static TheoryData<string, DevicePrivateDesign> Races()
    {
        var data = new TheoryData<string, DevicePrivateDesign>();
        foreach (var race in new[] { nameof(AnonTeardown), nameof(MigrationRacingFork), nameof(ExitRacingDeviceFault), nameof(MigrationRacingClose) })
            foreach (var design in new[] { DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace })
                data.Add(race, design);
        return data;
    }

    private static string RunRace(string race, DevicePrivateDesign design, DeterministicScheduler s) => race switch
    {
        nameof(AnonTeardown) => AnonTeardown(design, s),
        nameof(MigrationRacingFork) => MigrationRacingFork(design, s),
        nameof(ExitRacingDeviceFault) => ExitRacingDeviceFault(design, s),
        nameof(MigrationRacingClose) => MigrationRacingClose(design, s),
        _ => throw new ArgumentException(race),
    };

    /// <summary>Every seed gives an outcome the kernel allows; replaying its recorded choices gives the same
    /// trace and outcome; over the seeds, the race shows more than one interleaving.</summary>
    [Theory]
    [MemberData(nameof(Races))]
    public void EverySeedEndsAsTheKernelGuaranteesAndReplaysExactly(string race, DevicePrivateDesign design)
    {
        var traces = new HashSet<string>();
        for (int seed = 0; seed < 12; seed++)
        {
            using var first = new DeterministicScheduler(seed);
            string outcome = RunRace(race, design, first);
            using var replay = new DeterministicScheduler(first.Choices);
            Assert.Equal(outcome, RunRace(race, design, replay));
            Assert.Equal(first.Trace, replay.Trace);
            traces.Add(string.Join("|", first.Trace));
        }
        Assert.True(traces.Count > 1, $"{race}: every seed gave the same interleaving");
    }

    /// <summary>anon_teardown's narrow window, recorded once and replayed: the READ faults the whole buffer
    /// in and drops mmap_lock; munmap of the upper half runs before the READ takes the mirror lock; the
    /// READ sees the notifier sequence moved (mmu_interval_read_retry), faults again, and fails with
    /// EFAULT on the unmapped half. The same choices give the same trace and outcome every time.</summary>
    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void RecordedAnonTeardownInterleavingReplaysToEfaultEveryTime(DevicePrivateDesign design)
    {
        int[] recorded = [0, 0, 1, 1, 1, 0, 0, 0];
        string[] trace =
        [
            "t0 mmap_read_lock", "t0 mmap_read_unlock",
            "t1 mmap_write_lock", "t1 mmap_write_unlock", "t1 exit",
            "t0 mmap_read_lock", "t0 mmap_read_unlock", "t0 exit",
        ];
        for (int run = 0; run < 3; run++)
        {
            using var s = new DeterministicScheduler(recorded);
            Assert.Equal("EFAULT", AnonTeardown(design, s));
            Assert.Equal(trace, s.Trace);
        }
    }
}
