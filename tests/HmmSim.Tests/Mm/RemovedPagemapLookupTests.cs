namespace HmmSim.Kernel.Tests.Mm;

/// <summary>The stress run's third race: an entry read without the page-table lock names a page whose
/// pagemap a RELEASE has removed since. The fault paths must not look it up before re-checking the
/// entry, and migration_entry_wait (which reads unlocked) must take it as a migration that has ended.</summary>
public class RemovedPagemapLookupTests
{
    public static TheoryData<HmmSim.DevicePrivateDesign> Designs => [HmmSim.DevicePrivateDesign.PhysicalAddressSpace, HmmSim.DevicePrivateDesign.DeviceAddressSpace];

    [Theory]
    [MemberData(nameof(Designs))]
    public void MigrationEntryWaitOnAPageWhosePagemapIsGoneReturns(HmmSim.DevicePrivateDesign design)
    {
        using var m = new HmmSim.Machine(new HmmSim.MachineConfig { DevicePrivateDesign = design });
        var k = m.Kernel;
        var sw = k.Swapops;
        // A migration entry naming a page no memmap covers: a device page whose chunk was removed (the
        // redesign's device-private migration type), or a PFN in a hole of the physical map (today).
        var entry = design == HmmSim.DevicePrivateDesign.DeviceAddressSpace
            ? SwapEntry.Make(sw.SwpMigrationDeviceRead, 0x7fff_0000UL)
            : SwapEntry.Make(sw.SwpMigrationRead, (m.Config.RamBytes >> 12) + 0x10_0000);
        Assert.False(sw.TryPfnSwapEntryToPage(entry, out _));
        Migrate.MigrationEntryWait(k, entry);   // returns at once: the caller retries the fault
        // The checked lookup still treats such an entry as the BUG it is anywhere else.
        Assert.Throws<HmmSim.KernelBugException>(() => sw.PfnSwapEntryToPage(entry));
    }

    [Fact]
    public void TryLookupFindsALivePage()
    {
        using var m = new HmmSim.Machine();
        var sw = m.Kernel.Swapops;
        var entry = SwapEntry.Make(sw.SwpMigrationRead, 0x1234);
        Assert.True(sw.TryPfnSwapEntryToPage(entry, out var page));
        Assert.Equal(sw.PfnSwapEntryToPage(entry), page);
    }
}
