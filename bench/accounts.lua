-- wrk script for bench/accounts: each request carries the next of N app tokens
-- (`Authorization: Bearer bench-app-token-<i>`), N from the script's argument.
local n, i = 1, 0

function init(args)
    n = tonumber(args[1]) or 1
end

function request()
    i = i % n + 1
    return wrk.format(nil, nil, { ["Authorization"] = "Bearer bench-app-token-" .. i })
end
