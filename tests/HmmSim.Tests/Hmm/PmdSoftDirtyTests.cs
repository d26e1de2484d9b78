namespace HmmSim.Tests.Hmm;

/// <summary>The soft-dirty bit of a non-present PMD (x86-64: _PAGE_SWP_SOFT_DIRTY) survives what the
/// kernel carries it through: set_pmd_migration_entry and remove_migration_pmd (to a device-private
/// PMD and back to a present one), and both downgrades of copy_huge_non_present_pmd at fork.</summary>
public class PmdSoftDirtyTests
{
    private const ulong PmdSize = 2UL << 20;
    private const ulong Npages = PmdSize >> 12;
    private const ulong PmSwap = 1UL << 62;
    private const ulong PmSoftDirty = 1UL << 55;

    /// <summary>A written THP: its PMD is dirty and so soft-dirty.</summary>
    private static ulong WrittenThp(Process p)
    {
        Assert.Equal(Errno.None, p.Mmap(0, 2 * PmdSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw));
        ulong a = (raw + PmdSize - 1) & ~(PmdSize - 1);
        Assert.Equal(Errno.None, p.Madvise(a, PmdSize, Advice.HugePage));
        var data = new byte[PmdSize];
        Array.Fill(data, (byte)0x3c);
        p.Write(a, data);
        Assert.Equal(1, p.Machine.VmStat["nr_anon_transparent_hugepages"]);
        Assert.NotEqual(0UL, p.PagemapEntry(a) & PmSoftDirty);
        return a;
    }

    private static void AssertSoftDirtySwapPmd(Process p, ulong a)
    {
        ulong e = p.PagemapEntry(a);
        Assert.NotEqual(0UL, e & PmSwap);
        Assert.NotEqual(0UL, e & PmSoftDirty);
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void MigrationToADevicePrivatePmdAndBackKeepsSoftDirty(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong a = WrittenThp(p);

        Assert.Equal(Errno.None, dev.MigrateToDevice(a, Npages, new byte[PmdSize]).Error);
        var prot = new byte[Npages];
        Assert.Equal(Errno.None, dev.Snapshot(a, Npages, prot).Error);
        Assert.Equal((byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write | DmirrorProt.Pmd), prot[0]);
        AssertSoftDirtySwapPmd(p, a);

        Assert.Equal(Errno.None, dev.MigrateToSystem(a, Npages).Error);
        ulong back = p.PagemapEntry(a);
        Assert.Equal(0UL, back & PmSwap);
        Assert.NotEqual(0UL, back & PmSoftDirty);
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void ForkKeepsSoftDirtyWhenItMakesAWritableDevicePrivatePmdReadable(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong a = WrittenThp(p);
        Assert.Equal(Errno.None, dev.MigrateToDevice(a, Npages, new byte[PmdSize]).Error);

        var child = p.Fork();

        var prot = new byte[Npages];
        Assert.Equal(Errno.None, dev.Snapshot(a, Npages, prot).Error);
        Assert.Equal((byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Read | DmirrorProt.Pmd), prot[0]);
        AssertSoftDirtySwapPmd(p, a);
        AssertSoftDirtySwapPmd(child, a);
        child.Dispose();
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void ForkKeepsSoftDirtyWhenItMakesAWritablePmdMigrationEntryReadable(DevicePrivateDesign design)
    {
        // A fork racing the migration of a THP: the checker would (rightly) see the migration entry
        // between operations, so it runs once the migration is over.
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        var p = m.CreateProcess();
        ulong a = WrittenThp(p);

        var kernel = m.Kernel;
        var mm = p.Mm;
        Assert.True(mm.PmdTable(a, alloc: false, out var pmdTable));
        ref ulong slot = ref mm.PmdRef(pmdTable, a);
        var folio = kernel.Memmap.PfnToPage(kernel.Arch.PmdPfn(slot)).Folio;
        folio.Get();
        folio.Lock();
        Assert.True(Migrate.InstallPmdMigrationEntry(mm.Vmas.Lookup(a)!, ref slot, folio));
        Assert.True(kernel.Swapops.SoftleafIsMigrationWrite(kernel.Arch.PmdToSwpEntry(slot)));

        var child = p.Fork();

        Assert.True(kernel.Swapops.SoftleafIsMigrationRead(kernel.Arch.PmdToSwpEntry(slot)));
        AssertSoftDirtySwapPmd(p, a);
        AssertSoftDirtySwapPmd(child, a);

        // The migration ends (back to the same folio): both mappings come back present and soft-dirty.
        Migrate.RemoveMigrationPtes(kernel, folio, folio);
        folio.Unlock();
        folio.Put();
        m.CheckInvariants();
        Assert.NotEqual(0UL, p.PagemapEntry(a) & PmSoftDirty);
        Assert.NotEqual(0UL, child.PagemapEntry(a) & PmSoftDirty);
        child.Dispose();
    }
}
