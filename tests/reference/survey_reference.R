# Reference values from R's survey package (Debian: r-cran-survey) for tests/test_metrics.py.
# Run from this folder:  Rscript survey_reference.R
# Reads survey_sample.csv; writes survey_reference.csv and rake_reference.csv (committed, so
# the Python tests need no R).
suppressMessages(library(survey))
options(digits = 15)
d <- read.csv("survey_sample.csv", stringsAsFactors = FALSE)
d$nps_y <- ifelse(is.na(d$nps), NA, ifelse(d$nps >= 9, 1, ifelse(d$nps <= 6, -1, 0)))
d$csat_top2 <- ifelse(is.na(d$csat), NA, as.numeric(d$csat >= 4))
d$one <- 1

designs <- list(
  weighted = svydesign(ids = ~1, weights = ~weight, data = d),
  unweighted = svydesign(ids = ~1, weights = ~one, data = d)
)
rows <- list()
for (dn in names(designs)) {
  des <- designs[[dn]]
  for (v in c("nps_y", "csat_top2", "ces")) {
    f <- as.formula(paste0("~", v))
    m <- svymean(f, des, na.rm = TRUE)
    rows[[length(rows) + 1]] <- data.frame(design = dn, variable = v, unit = "ALL",
                                           estimate = coef(m)[[1]], se = SE(m)[[1]])
    b <- svyby(f, ~unit, des, svymean, na.rm = TRUE)
    rows[[length(rows) + 1]] <- data.frame(design = dn, variable = v, unit = b$unit,
                                           estimate = b[[v]], se = SE(b))
  }
}
write.csv(do.call(rbind, rows), "survey_reference.csv", row.names = FALSE)

# Raking to population margins (region, tier), converged tightly.
pop_region <- data.frame(region = c("North", "South", "East"), Freq = c(5000, 3500, 1500))
pop_tier <- data.frame(tier = c("Blue", "Silver", "Gold"), Freq = c(7000, 2200, 800))
raked <- rake(designs$weighted, list(~region, ~tier), list(pop_region, pop_tier),
              control = list(maxit = 200, epsilon = 1e-12, verbose = FALSE))
m <- svymean(~nps_y, raked, na.rm = TRUE)
write.csv(data.frame(row = seq_len(nrow(d)), weight = weights(raked)),
          "rake_reference.csv", row.names = FALSE)
write.csv(data.frame(variable = "nps_y", estimate = coef(m)[[1]], se = SE(m)[[1]]),
          "rake_mean_reference.csv", row.names = FALSE)
