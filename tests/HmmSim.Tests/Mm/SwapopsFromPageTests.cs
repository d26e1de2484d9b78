namespace HmmSim.Tests.Mm;

public class SwapopsFromPageTests
{
    private const ulong DeviceFirst = 0x1000000;   // a section-aligned PFN well above RAM (legacy design)
    private const ulong DevicePages = 1UL << 15;

    private static (Swapops Swapops, Page DevicePage, Page RamPage) Setup(DevicePrivateDesign design)
    {
        var kernel = SwapopsTestKernels.Kernel(design);
        bool devicePrivateSpace = design == DevicePrivateDesign.DeviceAddressSpace;
        ulong first = devicePrivateSpace ? 0 : DeviceFirst;
        var pgmap = new DevPagemap(MemoryType.DevicePrivate, owner: null, new DevPagemapOps());
        kernel.Memmap.AddRange(devicePrivateSpace, first, DevicePages, ZoneType.Device, pgmap);
        var device = devicePrivateSpace
            ? kernel.Memmap.DevicePrivateOffsetToPage(new DevicePrivateIndex(first + 7))
            : kernel.Memmap.PfnToPage(new Pfn(first + 7));
        var ram = kernel.Memmap.PfnToPage(new Pfn(0x123));
        // Migration entries are only read back while their page is locked (softleaf_to_page's
        // VM_WARN_ON_ONCE), as it is for the whole of a migration.
        device.Folio.Lock();
        ram.Folio.Lock();
        return (new Swapops(kernel.Arch, (HmmSim.Kernel.DevicePrivateDesign)design, kernel.Memmap), device, ram);
    }

    [Fact]
    public void RedesignMigrationEntriesOfADevicePrivatePageUseTheMigrationDeviceTypes()
    {
        var (s, dev, _) = Setup(DevicePrivateDesign.DeviceAddressSpace);
        Assert.Equal(SoftleafType.MigrationDevicePrivateRead, s.SoftleafType(s.MakeReadableMigrationEntryFromPage(dev)));
        Assert.Equal(SoftleafType.MigrationDevicePrivateReadExclusive, s.SoftleafType(s.MakeReadableExclusiveMigrationEntryFromPage(dev)));
        Assert.Equal(SoftleafType.MigrationDevicePrivateWrite, s.SoftleafType(s.MakeWritableMigrationEntryFromPage(dev)));
        Assert.Equal(7UL, s.MakeWritableMigrationEntryFromPage(dev).Offset);
    }

    [Fact]
    public void RedesignDevicePrivateEntriesCarryTheIndexAndLeadBackToThePage()
    {
        var (s, dev, _) = Setup(DevicePrivateDesign.DeviceAddressSpace);
        foreach (var e in new[]
        {
            s.MakeReadableDevicePrivateEntryFromPage(dev), s.MakeWritableDevicePrivateEntryFromPage(dev),
            s.MakeReadableMigrationEntryFromPage(dev), s.MakeWritableMigrationEntryFromPage(dev),
        })
        {
            Assert.Equal(dev, s.SoftleafToPage(e));
            Assert.Equal(dev.Folio, s.SoftleafToFolio(e));
            Assert.Equal(new DevicePrivateIndex(7), s.SoftleafToDevicePrivateIndex(e));
        }
    }

    [Fact]
    public void RedesignSoftleafToPfnOfADevicePrivateEntryIsABug()
    {
        var (s, dev, _) = Setup(DevicePrivateDesign.DeviceAddressSpace);
        Assert.Throws<KernelBugException>(() => s.SoftleafToPfn(s.MakeWritableDevicePrivateEntryFromPage(dev)));
        Assert.Throws<KernelBugException>(() => s.SoftleafToPfn(s.MakeReadableMigrationEntryFromPage(dev)));
    }

    [Fact]
    public void RedesignMigrationEntriesOfARamPageStayPfnMigrationEntries()
    {
        var (s, _, ram) = Setup(DevicePrivateDesign.DeviceAddressSpace);
        var e = s.MakeWritableMigrationEntryFromPage(ram);
        Assert.Equal(SoftleafType.MigrationWrite, s.SoftleafType(e));
        Assert.Equal(new Pfn(0x123), s.SoftleafToPfn(e));
        Assert.Equal(ram, s.SoftleafToPage(e));
    }

    [Fact]
    public void LegacyDevicePrivatePageGetsPfnEntriesOfTheOrdinaryTypes()
    {
        var (s, dev, _) = Setup(DevicePrivateDesign.PhysicalAddressSpace);
        var mig = s.MakeWritableMigrationEntryFromPage(dev);
        var dp = s.MakeWritableDevicePrivateEntryFromPage(dev);
        Assert.Equal(SoftleafType.MigrationWrite, s.SoftleafType(mig));
        Assert.Equal(SoftleafType.DevicePrivateWrite, s.SoftleafType(dp));
        Assert.Equal(new Pfn(DeviceFirst + 7), s.SoftleafToPfn(dp));
        Assert.Equal(dev, s.SoftleafToPage(mig));
        Assert.Equal(dev, s.SoftleafToPage(dp));
    }

    [Fact]
    public void DevicePrivateEntryOfARamPageIsABug()
    {
        var (s, _, ram) = Setup(DevicePrivateDesign.DeviceAddressSpace);
        Assert.Throws<KernelBugException>(() => s.MakeReadableDevicePrivateEntryFromPage(ram));
    }

    [Fact]
    public void SoftleafToPageOfAnEntryWithoutPfnIsABug()
    {
        var (s, _, _) = Setup(DevicePrivateDesign.DeviceAddressSpace);
        Assert.Throws<KernelBugException>(() => s.SoftleafToPage(s.MakePteMarker(Swapops.PteMarkerPoisoned)));
        Assert.Throws<KernelBugException>(() => s.SoftleafToPage(SwapEntry.Make(3, 99)));
    }
}
