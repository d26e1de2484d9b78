namespace HmmSim.Kernel.Tests.Variants;

/// <summary>SoftleafMigrationRule.AsPostedV1: softleaf_is_migration_read() says false for a
/// device-private read migration entry while _migration() says true. remove_migration_pte maps a page
/// RMAP_EXCLUSIVE unless its entry is a read entry, so a device-private page shared by parent and child
/// after fork comes back to RAM exclusive in both.</summary>
public class SoftleafMigrationTests
{
    private const ulong Page = 4096;

    /// <summary>One page on unit 0's device memory, then fork: parent and child share it through readable
    /// device-private entries (copy_nonpresent_pte), neither exclusive.</summary>
    private static (Machine M, Process Parent, Process Child, Dmirror Dev, ulong A) SharedDevicePage(HmmSim.SoftleafMigrationRule rule, bool checks)
    {
        var m = new Machine(new MachineConfig { CheckInvariants = checks, Variants = new() { SoftleafMigration = rule } });
        var parent = m.CreateProcess();
        var dev = parent.OpenDmirror(0);
        Assert.Equal(HmmSim.Errno.None, parent.Mmap(0, Page, HmmSim.Prot.Read | HmmSim.Prot.Write, HmmSim.MapFlags.Private | HmmSim.MapFlags.Anonymous, out ulong a));
        parent.WriteInt32(a, 1);
        Assert.Equal(new DmirrorResult(HmmSim.Errno.None, 1, 0), dev.MigrateToDevice(a, 1, new byte[Page]));
        var child = parent.Fork();
        return (m, parent, child, dev, a);
    }

    private static bool ExclusiveWarning(string line) =>
        line.Contains("WARNING: VM_WARN_ON_FOLIO", StringComparison.Ordinal) && line.Contains("__folio_add_anon_rmap", StringComparison.Ordinal);

    [Fact]
    public void WithConsistentPredicatesTheChildsWriteStaysItsOwn()
    {
        var (m, parent, child, dev, a) = SharedDevicePage(HmmSim.SoftleafMigrationRule.Consistent, checks: true);
        using (m)
        using (dev)
        {
            Assert.Equal(1, parent.ReadInt32(a));   // migrate_to_ram: both mappings become RAM PTEs, shared
            child.WriteInt32(a, 2);                  // COW: the child gets a copy
            Assert.Equal(1, parent.ReadInt32(a));
            Assert.Equal(2, child.ReadInt32(a));
            Assert.DoesNotContain(m.Dmesg(), ExclusiveWarning);
        }
    }

    [Fact]
    public void AsPostedV1MapsTheSharedPageExclusiveTwiceAndDebugVmWarns()
    {
        var (m, parent, _, dev, a) = SharedDevicePage(HmmSim.SoftleafMigrationRule.AsPostedV1, checks: false);
        using (m)
        using (dev)
        {
            Assert.Equal(1, parent.ReadInt32(a));
            Assert.Contains(m.Dmesg(), ExclusiveWarning);
        }
    }

    [Fact]
    public void AsPostedV1LetsTheChildWriteIntoTheParentsPage()
    {
        var (m, parent, child, dev, a) = SharedDevicePage(HmmSim.SoftleafMigrationRule.AsPostedV1, checks: false);
        using (m)
        using (dev)
        {
            Assert.Equal(1, parent.ReadInt32(a));
            // PageAnonExclusive on a page two mms map: do_wp_page reuses it instead of copying.
            child.WriteInt32(a, 2);
            Assert.Equal(2, parent.ReadInt32(a));
        }
    }

    [Fact]
    public void WithTheCheckerOnTheFaultThatBringsThePageBackIsAKernelBug()
    {
        // After the oops the machine is left as a crashed kernel would be: not torn down.
        var (m, parent, _, _, a) = SharedDevicePage(HmmSim.SoftleafMigrationRule.AsPostedV1, checks: true);
        Assert.Throws<KernelBugException>(() => parent.ReadInt32(a));
        Assert.Contains(m.Dmesg(), ExclusiveWarning);
    }

    [Fact]
    public void AsPostedV1OnlyTheReadPredicateDisagrees()
    {
        using var m = new Machine(new MachineConfig { Variants = new() { SoftleafMigration = HmmSim.SoftleafMigrationRule.AsPostedV1 } });
        var sw = m.Kernel.Swapops;
        var read = sw.MakeReadableMigrationDevicePrivateEntry(5);
        Assert.True(sw.SoftleafIsMigration(read));
        Assert.False(sw.SoftleafIsMigrationRead(read));
        Assert.True(sw.SoftleafIsMigrationReadExclusive(sw.MakeReadableExclusiveMigrationDevicePrivateEntry(5)));
        Assert.True(sw.SoftleafIsMigrationWrite(sw.MakeWritableMigrationDevicePrivateEntry(5)));
        Assert.True(sw.SoftleafIsMigrationRead(sw.MakeReadableMigrationEntry(5)));
    }
}
