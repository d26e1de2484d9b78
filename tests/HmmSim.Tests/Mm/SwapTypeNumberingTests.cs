namespace HmmSim.Tests.Mm;

public class SwapTypeNumberingTests
{
    [Fact]
    public void LegacyDesignHasTheTodayKernelNumbers()
    {
        var s = SwapopsTestKernels.Swapops(DevicePrivateDesign.PhysicalAddressSpace);
        Assert.Equal(3, s.SwpDeviceNum);
        Assert.Equal(24, s.MaxSwapfiles);
        Assert.Equal(24u, s.SwpHwpoison);
        Assert.Equal(25u, s.SwpMigrationRead);
        Assert.Equal(26u, s.SwpMigrationReadExclusive);
        Assert.Equal(27u, s.SwpMigrationWrite);
        Assert.Equal(28u, s.SwpDeviceWrite);
        Assert.Equal(29u, s.SwpDeviceRead);
        Assert.Equal(30u, s.SwpDeviceExclusive);
        Assert.Equal(31u, s.SwpPteMarker);
    }

    [Fact]
    public void RedesignHasSixDeviceTypesAndTwentyOneSwapfiles()
    {
        var s = SwapopsTestKernels.Swapops(DevicePrivateDesign.DeviceAddressSpace);
        Assert.Equal(6, s.SwpDeviceNum);
        Assert.Equal(21, s.MaxSwapfiles);
        Assert.Equal(21u, s.SwpHwpoison);
        Assert.Equal(22u, s.SwpMigrationRead);
        Assert.Equal(23u, s.SwpMigrationReadExclusive);
        Assert.Equal(24u, s.SwpMigrationWrite);
        Assert.Equal(25u, s.SwpDeviceWrite);
        Assert.Equal(26u, s.SwpDeviceRead);
        Assert.Equal(27u, s.SwpDeviceExclusive);
        Assert.Equal(28u, s.SwpMigrationDeviceRead);
        Assert.Equal(29u, s.SwpMigrationDeviceReadExclusive);
        Assert.Equal(30u, s.SwpMigrationDeviceWrite);
        Assert.Equal(31u, s.SwpPteMarker);
    }

    [Fact]
    public void LegacyDesignHasNoMigrationDeviceTypes()
    {
        var s = SwapopsTestKernels.Swapops(DevicePrivateDesign.PhysicalAddressSpace);
        Assert.Throws<NotSupportedException>(() => s.SwpMigrationDeviceRead);
        Assert.Throws<NotSupportedException>(() => s.MakeWritableMigrationDevicePrivateEntry(1));
    }

    [Theory]
    [InlineData(Architecture.X86_64, 34, 36)]
    [InlineData(Architecture.Arm64, 36, 38)]
    public void PfnBitsAndMigrationTotalBitsFollowMaxPhysmemBits(Architecture arch, int pfnBits, int totalBits)
    {
        var s = SwapopsTestKernels.Swapops(DevicePrivateDesign.DeviceAddressSpace, arch);
        Assert.Equal(pfnBits, s.SwpPfnBits);
        Assert.Equal(pfnBits, s.SwpMigYoungBit);
        Assert.Equal(pfnBits + 1, s.SwpMigDirtyBit);
        Assert.Equal(totalBits, s.SwpMigTotalBits);
    }

    [Theory]
    [InlineData(Architecture.X86_64)]
    [InlineData(Architecture.Arm64)]
    public void MigrationEntriesSupportAccessedAndDirtyOnBothArches(Architecture arch)
    {
        // 50 offset bits survive the PTE form on both, more than SWP_MIG_TOTAL_BITS.
        Assert.True(SwapopsTestKernels.Swapops(DevicePrivateDesign.DeviceAddressSpace, arch).MigrationEntrySupportsAd);
    }

    [Fact]
    public void YoungAndDirtyBitsSitJustAbovePfnBits()
    {
        var s = SwapopsTestKernels.Swapops(DevicePrivateDesign.DeviceAddressSpace);
        var e = s.MakeMigrationEntryDirty(s.MakeMigrationEntryYoung(s.MakeWritableMigrationEntry(0x1234)));
        Assert.Equal(0x1234UL | (1UL << 34) | (1UL << 35), e.Offset);
        Assert.True(s.SoftleafIsMigrationYoung(e));
        Assert.True(s.SoftleafIsMigrationDirty(e));
        Assert.Equal(new Pfn(0x1234), s.SoftleafToPfn(e));
    }

    [Fact]
    public void PteMarkerMustBeNonZero()
    {
        var s = SwapopsTestKernels.Swapops(DevicePrivateDesign.DeviceAddressSpace);
        Assert.Throws<KernelBugException>(() => s.MakePteMarker(0));
        var guard = s.MakePteMarker(Swapops.PteMarkerGuard);
        Assert.True(s.SoftleafIsGuardMarker(guard));
        Assert.False(s.SoftleafIsPoisonMarker(guard));
    }
}
