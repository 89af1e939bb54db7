-- KEMI (Lua) version of kamailio.cfg's request_route, for test.sh's KEMI
-- stage: the pipe is the R-URI user; pipes named fg_* go through
-- KSR.floodgate, the others through KSR.pipelimit (pipelimit's own exports,
-- or floodgate's alias of them).
function ksr_request_route()
	if KSR.is_ACK() then
		return 1
	end
	local pipe = KSR.pv.get("$rU")
	local pl = KSR.pipelimit
	if string.sub(pipe, 1, 3) == "fg_" then
		pl = KSR.floodgate
	end
	local limit = KSR.pv.get("$hdr(X-PL-Limit)")
	local rc
	if limit == "-" then
		rc = pl.pl_check(pipe)
	else
		rc = pl.pl_check_limit(pipe, KSR.pv.get("$hdr(X-PL-Algo)"), tonumber(limit))
	end
	if rc < 0 then
		pl.pl_drop_retry(5)
		return 1
	end
	if pl.pl_active(pipe) ~= 1 then
		KSR.sl.sl_send_reply(500, "pl_active")
		return 1
	end
	KSR.sl.sl_send_reply(200, "OK")
	return 1
end
