using CloudMirrorFs.Objects;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>What every object store must do. Each store (folder, S3 on s3rver, Azure on Azurite) runs it through a subclass.</summary>
public abstract class ObjectStoreContractTests
{
    protected IObjectStore Store { get; private set; } = null!;

    /// <summary>A fresh, empty store (a new folder, bucket or container per test).</summary>
    protected abstract Task<IObjectStore> CreateStoreAsync();

    [TestInitialize]
    public async Task SetUpStore()
    {
        Store = await CreateStoreAsync();
        await Store.EnsureReadyAsync(createIfMissing: true, default);
    }

    [TestCleanup]
    public async Task TearDownStore() => await Store.DisposeAsync();

    protected static byte[] Bytes(int n, int seed)
    {
        byte[] b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private async Task<List<ObjectInfo>> ListAsync(string prefix)
    {
        var list = new List<ObjectInfo>();
        await foreach (ObjectInfo o in Store.ListAsync(prefix, default))
        {
            list.Add(o);
        }
        return list;
    }

    [TestMethod]
    public async Task Put_ThenGet_SameBytes()
    {
        byte[] data = Bytes(200_000, 1);
        await Store.PutAsync("a/b/obj1", data, default);
        CollectionAssert.AreEqual(data, await Store.GetAsync("a/b/obj1", 0, null, default));
    }

    [TestMethod]
    public async Task Get_Range_ReturnsThatSliceClippedAtTheEnd()
    {
        byte[] data = Bytes(10_000, 2);
        await Store.PutAsync("r", data, default);
        CollectionAssert.AreEqual(data[1000..1100], await Store.GetAsync("r", 1000, 100, default));
        CollectionAssert.AreEqual(data[9990..], await Store.GetAsync("r", 9990, 100, default));
        CollectionAssert.AreEqual(data[5000..], await Store.GetAsync("r", 5000, null, default));
    }

    [TestMethod]
    public async Task Get_Missing_IsNull() => Assert.IsNull(await Store.GetAsync("nope/none", 0, null, default));

    [TestMethod]
    public async Task Put_Twice_SecondWins()
    {
        await Store.PutAsync("k", Bytes(100, 3), default);
        await Store.PutAsync("k", Bytes(50, 4), default);
        CollectionAssert.AreEqual(Bytes(50, 4), await Store.GetAsync("k", 0, null, default));
    }

    [TestMethod]
    public async Task Put_Empty_RoundTrips()
    {
        await Store.PutAsync("empty", Array.Empty<byte>(), default);
        byte[]? got = await Store.GetAsync("empty", 0, null, default);
        Assert.IsNotNull(got);
        Assert.AreEqual(0, got.Length);
    }

    [TestMethod]
    public async Task List_ByPrefix_InKeyOrderWithSizes()
    {
        foreach (string k in new[] { "c/00000000000000000010", "c/00000000000000000002", "c/00000000000000000001", "cx/1", "d/1" })
        {
            await Store.PutAsync(k, Bytes(k.Length, 5), default);
        }
        List<ObjectInfo> c = await ListAsync("c/");
        CollectionAssert.AreEqual(new[] { "c/00000000000000000001", "c/00000000000000000002", "c/00000000000000000010" }, c.Select(o => o.Key).ToArray());
        Assert.AreEqual("c/00000000000000000001".Length, c[0].Size);
        Assert.AreEqual(4, (await ListAsync("c")).Count);
        Assert.AreEqual(5, (await ListAsync("")).Count);
        Assert.AreEqual(0, (await ListAsync("zzz/")).Count);
    }

    [TestMethod]
    public async Task Delete_AndDeleteMany_RemoveAndTolerateMissing()
    {
        for (int i = 0; i < 5; i++)
        {
            await Store.PutAsync($"del/{i}", Bytes(10, i), default);
        }
        await Store.DeleteAsync("del/0", default);
        await Store.DeleteAsync("del/0", default);
        await Store.DeleteManyAsync(["del/1", "del/2", "del/missing"], default);
        CollectionAssert.AreEqual(new[] { "del/3", "del/4" }, (await ListAsync("del/")).Select(o => o.Key).ToArray());
    }

    [TestMethod]
    public async Task Put_ManyInParallel_AllLand()
    {
        await Task.WhenAll(Enumerable.Range(0, 32).Select(i => Store.PutAsync($"par/{i:D4}", Bytes(4096, i), default).AsTask()));
        List<ObjectInfo> all = await ListAsync("par/");
        Assert.AreEqual(32, all.Count);
        for (int i = 0; i < 32; i++)
        {
            CollectionAssert.AreEqual(Bytes(4096, i), await Store.GetAsync($"par/{i:D4}", 0, null, default));
        }
    }
}
