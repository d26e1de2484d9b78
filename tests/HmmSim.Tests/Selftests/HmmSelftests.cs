using HmmSim.Selftests;

namespace HmmSim.Tests.Selftests;

/// <summary>Every TEST_F of tools/testing/selftests/mm/hmm-tests.c (ported in HmmSim.Selftests),
/// for each fixture variant under each design: 152 cases, none skipped.</summary>
public class HmmSelftests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in SelftestCatalog.All)
            data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelSelftest(string name) => SelftestCatalog.Find(name).Run();

    [Fact]
    public void EveryKernelTestIsPortedForBothVariantsAndDesigns()
    {
        // 38 TEST_Fs (35 of FIXTURE(hmm), 3 of FIXTURE(hmm2)) x 2 variants x 2 designs.
        Assert.Equal(152, SelftestCatalog.All.Count);
        Assert.Equal(38, SelftestCatalog.All.Select(c => c.Test).Distinct().Count());
        Assert.Equal(35, SelftestCatalog.All.Where(c => c.Fixture == "hmm").Select(c => c.Test).Distinct().Count());
        Assert.Equal(3, SelftestCatalog.All.Where(c => c.Fixture == "hmm2").Select(c => c.Test).Distinct().Count());
        Assert.Equal(152, SelftestCatalog.All.Select(c => c.Name).Distinct().Count());
    }
}
