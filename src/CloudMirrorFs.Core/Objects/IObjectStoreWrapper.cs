namespace CloudMirrorFs.Objects;

/// <summary>An object store that adds behaviour to another (a codec, a simulated link): the store it wraps.</summary>
internal interface IObjectStoreWrapper
{
    /// <summary>The store wrapped.</summary>
    IObjectStore Inner { get; }

    /// <summary>The store under every wrapper.</summary>
    static IObjectStore Unwrap(IObjectStore store)
    {
        while (store is IObjectStoreWrapper wrapper)
        {
            store = wrapper.Inner;
        }
        return store;
    }
}
